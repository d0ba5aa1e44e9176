//! Which accelerator errors leave the device unusable for the rest of the process.
//!
//! CUDA reports some faults as *sticky*: once raised, the context is corrupt and every later
//! call fails the same way (the best known, `cudaErrorIllegalAddress`, error 700). Nothing in
//! the process can recover from one; the only cure is a new process with a new context. These
//! must end the node at once so dora restarts it, never be retried in place.

/// The sticky CUDA errors: (code, runtime API name, driver API name).
pub const STICKY_CUDA_ERRORS: &[(u32, &str, &str)] = &[
    (
        214,
        "cudaErrorECCUncorrectable",
        "CUDA_ERROR_ECC_UNCORRECTABLE",
    ),
    (700, "cudaErrorIllegalAddress", "CUDA_ERROR_ILLEGAL_ADDRESS"),
    (702, "cudaErrorLaunchTimeout", "CUDA_ERROR_LAUNCH_TIMEOUT"),
    (710, "cudaErrorAssert", "CUDA_ERROR_ASSERT"),
    (
        714,
        "cudaErrorHardwareStackError",
        "CUDA_ERROR_HARDWARE_STACK_ERROR",
    ),
    (
        715,
        "cudaErrorIllegalInstruction",
        "CUDA_ERROR_ILLEGAL_INSTRUCTION",
    ),
    (
        716,
        "cudaErrorMisalignedAddress",
        "CUDA_ERROR_MISALIGNED_ADDRESS",
    ),
    (
        717,
        "cudaErrorInvalidAddressSpace",
        "CUDA_ERROR_INVALID_ADDRESS_SPACE",
    ),
    (718, "cudaErrorInvalidPc", "CUDA_ERROR_INVALID_PC"),
    (719, "cudaErrorLaunchFailure", "CUDA_ERROR_LAUNCH_FAILED"),
];

/// Phrases the CUDA runtime and ONNX Runtime's CUDA/TensorRT providers put in the messages of
/// those errors.
const STICKY_PHRASES: &[&str] = &[
    "illegal memory access",
    "unspecified launch failure",
    "uncorrectable ecc error",
    "device-side assert",
    "misaligned address",
    "illegal instruction",
];

/// True when an error message reports a sticky device error.
#[must_use]
pub fn is_sticky_message(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    STICKY_CUDA_ERRORS.iter().any(|(code, runtime, driver)| {
        message.contains(runtime)
            || message.contains(driver)
            || lower.contains(&format!("cuda error {code}"))
            || lower.contains(&format!("cuda error: {code}"))
            || lower.contains(&format!("error code {code}"))
    }) || STICKY_PHRASES.iter().any(|p| lower.contains(p))
}

/// True for a sticky CUDA error code.
#[must_use]
pub fn is_sticky_code(code: u32) -> bool {
    STICKY_CUDA_ERRORS.iter().any(|(c, ..)| *c == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sticky_errors_are_recognised_in_the_forms_they_are_reported() {
        for m in [
            "CUDA failure 700: an illegal memory access was encountered ; GPU=0",
            "cudaErrorIllegalAddress",
            "CUDA_ERROR_LAUNCH_FAILED: unspecified launch failure",
            "Non-zero status code returned while running Conv node. CUDA error 719",
        ] {
            assert!(is_sticky_message(m), "{m}");
        }
        for m in [
            "CUDA failure 2: out of memory",
            "Got invalid dimensions for input: images",
            "cudaErrorMemoryAllocation",
        ] {
            assert!(!is_sticky_message(m), "{m}");
        }
        assert!(is_sticky_code(700) && !is_sticky_code(2));
    }
}
