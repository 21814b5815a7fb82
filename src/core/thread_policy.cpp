#include "core/thread_policy.hpp"

#include <sched.h>

namespace chatorbit {

bool run_as_batch_thread() {
  sched_param param{};
  param.sched_priority = 0;
  // pid 0: the calling thread (Linux schedules threads, not processes).
  return sched_setscheduler(0, SCHED_BATCH, &param) == 0;
}

}  // namespace chatorbit
