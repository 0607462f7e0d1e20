#!/bin/sh
# The instruction-set files of src/ops/cpu (kernels_avx2.cpp, kernels_avx512.cpp) are compiled with -mavx2 / -mavx512*.
# Any function they define outside their own namespace (an inline helper or template from a shared header) could be
# picked by the linker for the whole program and run AVX-512 code on an AVX2-only machine. Given the library's
# object files, fails if one of those files defines an external symbol other than its fill_<isa>_kernels entry point
# and names inside qwen3vl::ops::cpu::<isa>.
status=0
for object in "$@"; do
  case "$object" in
    *kernels_avx512.cpp.o) isa=avx512 ;;
    *kernels_avx2.cpp.o) isa=avx2 ;;
    *) continue ;;
  esac
  found=1
  stray=$(nm -C --defined-only --extern-only "$object" | cut -c20- |
          grep -v -e "qwen3vl::ops::cpu::$isa::" -e "qwen3vl::ops::cpu::fill_${isa}_kernels(")
  if [ -n "$stray" ]; then
    echo "$object defines symbols outside qwen3vl::ops::cpu::$isa:"
    echo "$stray"
    status=1
  fi
done
[ -n "$found" ] || { echo "no kernels_<isa>.cpp.o among the arguments"; exit 1; }
exit $status
