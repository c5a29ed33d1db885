//! Device and precision selection. The one place that looks at the `cuda` feature: everything
//! else asks this module what it can have.

use std::fmt;
use std::str::FromStr;

use candle_core::{DType, Device};

use crate::{Error, Result};

/// What the user asked for with `--device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceRequest {
    /// CUDA when built in and a GPU is present, otherwise the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceRequest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "auto" => Ok(DeviceRequest::Auto),
            "cpu" => Ok(DeviceRequest::Cpu),
            "cuda" | "gpu" => Ok(DeviceRequest::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(DeviceRequest::Cuda(n)),
                _ => Err(Error::InvalidInput(format!(
                    "unknown device `{s}`: use cpu, cuda, cuda:N or auto"
                ))),
            },
        }
    }
}

impl fmt::Display for DeviceRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceRequest::Auto => write!(f, "auto"),
            DeviceRequest::Cpu => write!(f, "cpu"),
            DeviceRequest::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Floating-point precision of the forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    F32,
    F16,
    Bf16,
}

impl FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "float32" => Ok(Precision::F32),
            "f16" | "float16" | "half" => Ok(Precision::F16),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            other => Err(Error::InvalidInput(format!(
                "unknown dtype `{other}`: use f32, f16 or bf16"
            ))),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
        })
    }
}

impl Precision {
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::F16 => DType::F16,
            Precision::Bf16 => DType::BF16,
        }
    }
}

/// Whether this binary was built with CUDA support.
pub fn cuda_built() -> bool {
    cfg!(feature = "cuda")
}

/// Why CUDA cannot be used, or `None` when device `ordinal` is usable.
pub fn cuda_unavailable_reason(ordinal: usize) -> Option<String> {
    if !cuda_built() {
        return Some(
            "this papersim was built without CUDA; rebuild with `cargo build --release --features cuda` (see README)"
                .into(),
        );
    }
    match Device::new_cuda(ordinal) {
        Ok(_) => None,
        // candle appends a backtrace when RUST_BACKTRACE is set: the reason is the first line.
        Err(e) => Some(format!(
            "no usable CUDA device {ordinal}: {}",
            e.to_string().lines().next().unwrap_or_default()
        )),
    }
}

/// The name of CUDA device `ordinal` (e.g. "NVIDIA H200"), or `None` when it cannot be opened.
pub fn gpu_name(ordinal: usize) -> Option<String> {
    #[cfg(feature = "cuda")]
    {
        use candle_core::cuda_backend::cudarc::driver::CudaContext;
        CudaContext::new(ordinal).ok()?.name().ok()
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = ordinal;
        None
    }
}

/// A chosen device with a description of why it was chosen.
#[derive(Debug, Clone)]
pub struct Selected {
    pub device: Device,
    pub name: String,
    pub note: String,
}

/// Turns a request into a device; never falls back silently from an explicit CUDA request.
pub fn select(request: DeviceRequest) -> Result<Selected> {
    match request {
        DeviceRequest::Cpu => Ok(Selected {
            device: Device::Cpu,
            name: "cpu".into(),
            note: "cpu (requested)".into(),
        }),
        DeviceRequest::Cuda(n) => match cuda_unavailable_reason(n) {
            None => Ok(Selected {
                device: Device::new_cuda(n)?,
                name: format!("cuda:{n}"),
                note: format!("cuda:{n} (requested)"),
            }),
            Some(reason) => Err(Error::Device {
                requested: request.to_string(),
                reason,
            }),
        },
        DeviceRequest::Auto => match cuda_unavailable_reason(0) {
            None => Ok(Selected {
                device: Device::new_cuda(0)?,
                name: "cuda:0".into(),
                note: "cuda:0 (auto: CUDA build with a GPU present)".into(),
            }),
            Some(reason) => Ok(Selected {
                device: Device::Cpu,
                name: "cpu".into(),
                note: if cuda_built() {
                    format!("cpu (auto: {reason})")
                } else {
                    "cpu (auto: this build has no CUDA)".into()
                },
            }),
        },
    }
}

/// Checks that a precision is usable on a device: half precision is for CUDA only, since
/// candle's CPU kernels are slower and less exact in f16/bf16 than in f32.
pub fn check_precision(device: &Device, precision: Precision) -> Result<()> {
    if precision != Precision::F32 && device.is_cpu() {
        return Err(Error::Device {
            requested: format!("cpu with {precision}"),
            reason: "half precision is supported on CUDA only; use --dtype f32 on the CPU".into(),
        });
    }
    Ok(())
}

/// Waits for queued work on the device, so a clock read afterwards measures finished work.
pub fn synchronize(device: &Device) -> Result<()> {
    device.synchronize()?;
    Ok(())
}

/// Number of CPU threads candle and rayon will use.
pub fn cpu_threads() -> usize {
    candle_core::utils::get_num_threads()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!("cpu".parse::<DeviceRequest>().unwrap(), DeviceRequest::Cpu);
        assert_eq!(
            "cuda:2".parse::<DeviceRequest>().unwrap(),
            DeviceRequest::Cuda(2)
        );
        assert_eq!(
            "AUTO".parse::<DeviceRequest>().unwrap(),
            DeviceRequest::Auto
        );
        assert!("tpu".parse::<DeviceRequest>().is_err());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_is_a_clear_error() {
        let err = select(DeviceRequest::Cuda(0)).unwrap_err().to_string();
        assert!(err.contains("built without CUDA"), "{err}");
        let auto = select(DeviceRequest::Auto).unwrap();
        assert!(auto.device.is_cpu());
        assert!(auto.note.contains("no CUDA"));
    }
}
