//! `vigil-gpu-ptx ARCH OUT.ptx`: the kernels compiled with NVRTC for ARCH (`sm_87`, `sm_90`),
//! for machines that have a driver but no NVRTC.

fn main() -> eyre::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [arch, out] = args.as_slice() else {
        eyre::bail!("usage: vigil-gpu-ptx sm_87|sm_90 OUT.ptx");
    };
    let arch: &'static str = match arch.as_str() {
        "sm_87" => "sm_87",
        "sm_90" => "sm_90",
        other => eyre::bail!("unknown architecture {other} (sm_87, sm_90)"),
    };
    let ptx = vigil_gpu::compile(arch).map_err(|e| eyre::eyre!("{e}"))?;
    std::fs::write(out, ptx.to_src())?;
    Ok(())
}
