#include "admission.h"

#include <algorithm>
#include <chrono>

namespace qwen3vl {
namespace server {

Admission::Admission(int slots, int max_waiting) : slots_(std::max(slots, 1)), max_waiting_(std::max(max_waiting, 0)) {}

std::unique_ptr<Admission::Ticket> Admission::try_enter() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (running_ + static_cast<int>(queue_.size()) >= slots_ + max_waiting_) return nullptr;
  const uint64_t id = next_id_++;
  queue_.push_back(id);
  return std::unique_ptr<Ticket>(new Ticket(*this, id));
}

bool Admission::Ticket::wait(const std::function<bool()>& keep_waiting) {
  std::unique_lock<std::mutex> lock(owner_.mutex_);
  while (true) {
    if (owner_.queue_.front() == id_ && owner_.running_ < owner_.slots_) {
      owner_.queue_.pop_front();
      queued_ = false;
      running_ = true;
      ++owner_.running_;
      owner_.changed_.notify_all();  // the next in line may run too when more slots are free
      return true;
    }
    owner_.changed_.wait_for(lock, std::chrono::milliseconds(100));
    if (keep_waiting) {
      lock.unlock();
      const bool keep = keep_waiting();
      lock.lock();
      if (!keep) {
        owner_.queue_.erase(std::find(owner_.queue_.begin(), owner_.queue_.end(), id_));
        queued_ = false;
        owner_.changed_.notify_all();
        return false;
      }
    }
  }
}

void Admission::leave(Ticket& ticket) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (ticket.queued_) {
    auto it = std::find(queue_.begin(), queue_.end(), ticket.id_);
    if (it != queue_.end()) queue_.erase(it);
  }
  if (ticket.running_) --running_;
  ticket.queued_ = ticket.running_ = false;
  changed_.notify_all();
}

Admission::Ticket::~Ticket() { owner_.leave(*this); }

int Admission::running() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return running_;
}

int Admission::waiting() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int>(queue_.size());
}

}  // namespace server
}  // namespace qwen3vl
