// The MPI communicator (communicator_mpi.cpp), compiled only when CMake finds MPI (QWEN3VL_WITH_MPI).
#pragma once

#include <memory>

#include "train/communicator.h"

namespace qwen3vl {

#ifdef QWEN3VL_WITH_MPI
// True when an MPI launcher started this process: Open MPI's mpirun (OMPI_COMM_WORLD_SIZE), PMI launchers such as
// MPICH's Hydra or Slurm's srun (PMI_SIZE), PMIx launchers (PMIX_RANK).
bool launched_by_mpi();

// Initializes MPI (MPI_THREAD_FUNNELED) on MPI_COMM_WORLD; the communicator finalizes it when destroyed.
std::unique_ptr<Communicator> make_mpi_communicator();
#endif

}  // namespace qwen3vl
