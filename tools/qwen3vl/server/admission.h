// Admission control: at most `slots` generations run at once and at most `max_waiting` requests wait for a slot, in
// arrival order. A request past that bound is refused at once (the handler answers 503 with Retry-After).
// The unit handed out is a slot for one sequence; a batching decoder later would hand out batch rows the same way.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

namespace qwen3vl {
namespace server {

class Admission {
 public:
  Admission(int slots, int max_waiting);

  // Holds a place in the queue, then a running slot; released when destroyed.
  class Ticket {
   public:
    ~Ticket();
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    // Blocks until this ticket may run. `keep_waiting` is polled every ~100 ms; when it returns false the ticket
    // leaves the queue and wait() returns false.
    bool wait(const std::function<bool()>& keep_waiting);
    bool running() const { return running_; }

   private:
    friend class Admission;
    Ticket(Admission& owner, uint64_t id) : owner_(owner), id_(id) {}
    Admission& owner_;
    uint64_t id_;
    bool running_ = false;
    bool queued_ = true;
  };

  // nullptr when the queue is full.
  std::unique_ptr<Ticket> try_enter();

  int running() const;
  int waiting() const;
  int slots() const { return slots_; }

 private:
  void leave(Ticket& ticket);

  const int slots_, max_waiting_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<uint64_t> queue_;
  int running_ = 0;
  uint64_t next_id_ = 0;
};

}  // namespace server
}  // namespace qwen3vl
