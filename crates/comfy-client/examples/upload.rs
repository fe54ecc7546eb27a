//! Upload an image to ComfyUI's input folder.
//!
//! ```text
//! cargo run -p comfy-client --example upload -- [URL] IMAGE [SUBFOLDER]
//! ```
//! Prints the name ComfyUI stored it under (it renames rather than
//! overwrite a different file of the same name), then reads it back.

#![allow(clippy::print_stdout, reason = "an example program reports to its user")]

use comfy_client::types::FileRef;
use comfy_client::{Client, UploadOptions};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "http://127.0.0.1:8188".to_owned());
    let path = args.next().ok_or("usage: upload [URL] IMAGE [SUBFOLDER]")?;
    let subfolder = args.next();

    let data = std::fs::read(&path)?;
    let name = std::path::Path::new(&path)
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("the image path has no usable file name")?;

    let client = Client::builder(url).build()?;
    let options = UploadOptions {
        subfolder,
        ..UploadOptions::default()
    };
    let stored = client.upload_image(name, &data, &options).await?;
    println!("stored as {}/{} in {}", stored.subfolder, stored.name, stored.kind);

    let back = client
        .view(
            &FileRef {
                filename: stored.name.clone(),
                subfolder: stored.subfolder.clone(),
                kind: stored.kind.clone(),
            },
            None,
        )
        .await?;
    if back.bytes.as_ref() != data.as_slice() {
        return Err("the file read back differs from the one uploaded".into());
    }
    println!(
        "read back {} bytes ({})",
        back.bytes.len(),
        back.content_type.as_deref().unwrap_or("?")
    );
    Ok(())
}
