//! What the server says about itself: `/prompt` (GET), `/features`,
//! `/system_stats`, `/internal/folder_paths`, `/experiment/models` and the
//! `LoadImage` input list.
//!
//! Apart from the queue because these answers are mostly recorded data
//! that differ by ComfyUI release, not state.

use serde_json::{Map, Value, json};

use super::Shared;
use crate::api;

impl Shared {
    pub(crate) fn prompt_info(&self) -> Value {
        json!({"exec_info": {"queue_remaining": self.lock().remaining()}})
    }

    pub(crate) fn features(&self) -> Value {
        if self.version.newer() {
            // As recorded from 0.33.0 (fixtures/comfyui-0.33/http/get_features).
            return json!({"supports_preview_metadata": true, "supports_model_type_tags": true, "max_upload_size": api::MAX_UPLOAD, "extension": {"manager": {"supports_v4": true}}, "node_replacements": true, "assets": false});
        }
        json!({"supports_preview_metadata": true, "max_upload_size": api::MAX_UPLOAD, "extension": {"manager": {"supports_v4": true}}})
    }

    pub(crate) fn system_stats(&self) -> Value {
        let mut stats = Self::system_stats_0_8();
        if self.version.newer()
            && let Some(sys) = stats.get_mut("system").and_then(Value::as_object_mut)
        {
            sys.insert("comfyui_version".into(), json!("0.33.0"));
            sys.insert("required_frontend_version".into(), json!("1.48.7"));
            sys.insert("installed_templates_version".into(), json!("0.11.41"));
            sys.insert("required_templates_version".into(), json!("0.11.41"));
            sys.insert(
                "comfy_package_versions".into(),
                json!([
                    {"name": "comfyui-frontend-package", "installed": "1.48.7", "required": "1.48.7"},
                    {"name": "comfyui-workflow-templates", "installed": "0.11.41", "required": "0.11.41"},
                    {"name": "comfyui-embedded-docs", "installed": "0.5.9", "required": "0.5.9"}
                ]),
            );
            sys.insert("deploy_environment".into(), json!("local-git"));
        }
        stats
    }

    fn system_stats_0_8() -> Value {
        json!({
            "system": {
                "os": "linux", "ram_total": 25_276_063_744_u64, "ram_free": 23_744_385_024_u64,
                "comfyui_version": "0.8.0", "required_frontend_version": "1.35.9",
                "installed_templates_version": "0.7.67", "required_templates_version": "0.7.67",
                "python_version": "3.11.7 (main, May  9 2026, 07:35:25) [GCC 12.2.0]",
                "pytorch_version": "2.11.0+cu130", "embedded_python": false,
                "argv": ["main.py", "--cpu", "--listen", "127.0.0.1", "--port", "8188"]
            },
            "devices": [{
                "name": "cpu", "type": "cpu", "index": null,
                "vram_total": 25_276_063_744_u64, "vram_free": 23_744_385_024_u64,
                "torch_vram_total": 25_276_063_744_u64, "torch_vram_free": 23_744_385_024_u64
            }]
        })
    }

    pub(crate) fn folder_paths(&self) -> Value {
        let models = self.root.join("models");
        let mut m = Map::new();
        for f in crate::catalog::FOLDERS {
            m.insert((*f).to_owned(), json!([models.join(f).to_string_lossy()]));
        }
        Value::Object(m)
    }

    pub(crate) fn experiment_models(&self) -> Value {
        let models = self.root.join("models");
        Value::Array(
            crate::catalog::FOLDERS
                .iter()
                .filter(|f| !matches!(**f, "configs" | "custom_nodes"))
                .map(|f| json!({"name": f, "folders": [models.join(f).to_string_lossy()]}))
                .collect(),
        )
    }

    /// The `LoadImage` list: image files at the top of the input
    /// directory, sorted, as ComfyUI filters them by content type.
    pub(crate) fn input_files(&self) -> Vec<String> {
        let mut files: Vec<String> = crate::files::list_dir(&self.dir("input"))
            .into_iter()
            .filter(|f| {
                let lower = f.to_ascii_lowercase();
                [".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"]
                    .iter()
                    .any(|e| lower.ends_with(e))
            })
            .collect();
        files.sort();
        files
    }
}
