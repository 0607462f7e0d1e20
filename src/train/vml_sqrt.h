// float32 square root as torch.sqrt computes it on the CPUs that made the optimizer goldens.
//
// torch (ATen native/cpu/UnaryOpsKernel.cpp, vml.h) sends float sqrt to MKL VML (vmsSqrt, mode VML_HA). On Intel
// CPUs with AVX2 MKL's kernel is correctly rounded; on other CPUs (mkl_serv_cpu_detect() == 0: AMD) it runs the
// generic kernel, which refines the RSQRTPS approximation with one Goldschmidt step in separately rounded float
// operations and differs from the correctly rounded root in about a fifth of inputs (up to 0.75 ulp). AdamW's
// denominator goes through it, so torch's optimizer trajectory there depends on it.
//
// This reproduces that generic kernel on any CPU: RSQRTPS comes from a table dumped on the AMD EPYC (Zen 3) that
// produced the goldens (scripts/reference/dump_rsqrtps_table.cpp). Measured equal to torch.sqrt there on every
// input tested.
#pragma once

namespace qwen3vl {

float vml_generic_sqrt(float x);

}  // namespace qwen3vl
