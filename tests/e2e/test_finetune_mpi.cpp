// Data parallel over MPI: `mpirun -np 2 qwen3vl finetune` with accumulation 1 ends with the weights of one process
// with accumulation 2 (the same micro-batches per step; the ranks' gradients summed in rank order), within 1e-6
// relative, after 10 LoRA steps on tiny-realtok-bf16. Needs a build with MPI (QWEN3VL_WITH_MPI) and mpirun on PATH.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "io/safetensors.h"
#include "test_util.h"
#include "train/communicator.h"

namespace qwen3vl {
namespace {

std::string finetune_args(const std::string& out, int accumulation) {
  return "finetune -m " + testing::model_fixture("tiny-realtok-bf16") + " --data " + testing::fixtures_dir() +
         "/train/data/sft_mixed.jsonl --media-root " + testing::fixtures_dir() + " -o " + out +
         " --max-pixels 65536 --video-max-pixels 131072 --video-max-frames 4 --lr 1e-3 -t 1 --lora-target all-linear"
         " --lora-r 4 --max-steps 10 --gradient-accumulation-steps " + std::to_string(accumulation);
}

TEST(FinetuneMpi, TwoRanksEqualOneProcessWithAccumulationTwo) {
  if (!communicator_has_mpi()) GTEST_SKIP() << "this build has no MPI (install libopenmpi-dev and rebuild)";
  testing::TempDir dir;
  const auto single = testing::run_cli(finetune_args(dir.file("one"), 2));
  ASSERT_EQ(single.exit_code, 0) << single.output;
  // Containers run tests as root, which Open MPI refuses unless told; two ranks may share one core; under ASan,
  // Open MPI's own leaks are suppressed (tests/mpi/lsan.supp).
  const std::string lsan = "LSAN_OPTIONS=suppressions=" + testing::fixtures_dir() +
                           "/../mpi/lsan.supp:fast_unwind_on_malloc=0:print_suppressions=0 ";
  const auto ranks = testing::run_command(
      lsan + "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader mpirun -np 2 "
      "--oversubscribe " + testing::cli_path() + " " + finetune_args(dir.file("two"), 1) + " 2>&1");
  ASSERT_EQ(ranks.exit_code, 0) << ranks.output;
  EXPECT_NE(ranks.output.find("on 2 rank(s)"), std::string::npos) << ranks.output;

  const SafetensorsFile one(dir.file("one/adapter_model.safetensors"));
  const SafetensorsFile two(dir.file("two/adapter_model.safetensors"));
  ASSERT_EQ(one.tensors().size(), two.tensors().size());
  double worst = 0.0;
  for (const auto& [name, view] : one.tensors()) {
    const auto other = two.tensors().find(name);
    ASSERT_NE(other, two.tensors().end()) << name;
    const std::vector<float> a = tensor_floats(view), b = tensor_floats(other->second);
    double diff2 = 0.0, ref2 = 0.0;
    for (size_t i = 0; i < a.size(); ++i) {
      diff2 += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
      ref2 += static_cast<double>(a[i]) * a[i];
    }
    const double rel = std::sqrt(diff2 / std::max(ref2, 1e-30));
    worst = std::max(worst, rel);
    EXPECT_LE(rel, 1e-6) << name;
  }
  RecordProperty("worst_rel_l2", testing::scientific(worst));
}

}  // namespace
}  // namespace qwen3vl
