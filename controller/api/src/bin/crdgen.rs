//! Writes the generated schemas to a folder (default `crds/`): `hack/update-crds.sh` runs it.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os().nth(1).map_or_else(|| PathBuf::from("crds"), PathBuf::from);
    std::fs::create_dir_all(&dir)?;
    for file in meme_api::schema::generate() {
        std::fs::write(dir.join(&file.name), file.content)?;
        println!("wrote {}", dir.join(&file.name).display());
    }
    Ok(())
}
