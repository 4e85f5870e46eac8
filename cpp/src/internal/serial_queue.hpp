// Internal: one in-order queue of tasks served by one thread of its own. The emulated device's
// streams and the hybrid executor's device worker are each one of these.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace hmoe {

// Tasks run in submission order; they must not throw (they record their failures). drain()
// returns once every task submitted before it has finished.
class SerialQueue {
 public:
  SerialQueue() : worker_([this] { loop(); }) {}
  ~SerialQueue() {
    {
      std::lock_guard<std::mutex> l(m_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }
  void submit(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> l(m_);
      queue_.push_back(std::move(task));
    }
    cv_.notify_all();
  }
  void drain() {
    std::unique_lock<std::mutex> l(m_);
    idle_cv_.wait(l, [&] { return queue_.empty() && !busy_; });
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> l(m_);
    for (;;) {
      cv_.wait(l, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_ and nothing left
      auto task = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      l.unlock();
      task();
      l.lock();
      busy_ = false;
      if (queue_.empty()) idle_cv_.notify_all();
    }
  }
  std::mutex m_;
  std::condition_variable cv_, idle_cv_;
  std::deque<std::function<void()>> queue_;
  bool busy_ = false, stop_ = false;
  std::thread worker_;  // last: starts after the fields it uses exist
};

}  // namespace hmoe
