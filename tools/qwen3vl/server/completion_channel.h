// Hands one completion from the worker that runs it to the HTTP thread that answers: "prepared" (the request
// passed every check, so a stream may start), reply deltas as they are generated, then the outcome or an error.
// The HTTP side sets `cancelled` when its client has gone; the worker's text callback sees it and stops.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <vector>

#include "chat_service.h"

namespace qwen3vl {
namespace server {

class CompletionChannel {
 public:
  enum class State { Preparing, Generating, Finished, Failed };

  // Worker side.
  void set_prepared() {
    std::lock_guard<std::mutex> lock(mutex_);
    state_ = State::Generating;
    changed_.notify_all();
  }
  void push(ReplyDelta delta) {
    std::lock_guard<std::mutex> lock(mutex_);
    deltas_.push_back(std::move(delta));
    changed_.notify_all();
  }
  void finish(PreparedChat prepared, ChatOutcome outcome) {
    std::lock_guard<std::mutex> lock(mutex_);
    prepared_ = std::move(prepared);
    outcome_ = std::move(outcome);
    state_ = State::Finished;
    changed_.notify_all();
  }
  void fail(std::exception_ptr error) {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = error;
    state_ = State::Failed;
    changed_.notify_all();
  }

  // HTTP side: waits up to `timeout` for news (the end, or deltas when `deltas` is given, or else the end of
  // preparing); returns the state and moves the pending deltas into `deltas`.
  State wait(std::chrono::milliseconds timeout, std::vector<ReplyDelta>* deltas = nullptr) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_for(lock, timeout, [this, deltas] {
      if (state_ == State::Finished || state_ == State::Failed) return true;
      return deltas ? !deltas_.empty() : state_ != State::Preparing;
    });
    if (deltas) {
      for (ReplyDelta& delta : deltas_) deltas->push_back(std::move(delta));
      deltas_.clear();
    }
    return state_;
  }
  // Valid once wait() returned Finished / Failed.
  const PreparedChat& prepared() const { return prepared_; }
  const ChatOutcome& outcome() const { return outcome_; }
  [[noreturn]] void rethrow() const { std::rethrow_exception(error_); }

  std::atomic<bool> cancelled{false};

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  State state_ = State::Preparing;
  std::vector<ReplyDelta> deltas_;
  PreparedChat prepared_;
  ChatOutcome outcome_;
  std::exception_ptr error_;
};

}  // namespace server
}  // namespace qwen3vl
