// A value type that counts its lives, to check that every object a coroutine made is destroyed once.
#pragma once

#include <utility>

namespace corio::testing {

struct counted {
  static inline int constructed = 0;
  static inline int destroyed = 0;
  static void reset() noexcept { constructed = destroyed = 0; }
  static int alive() noexcept { return constructed - destroyed; }

  int value = 0;
  bool moved_from = false;

  explicit counted(int v = 0) noexcept : value(v) { ++constructed; }
  counted(const counted& o) noexcept : value(o.value) {
    ++constructed;
    ++copies;
  }
  counted(counted&& o) noexcept : value(o.value) {
    o.moved_from = true;
    ++constructed;
  }
  counted& operator=(const counted&) = default;
  counted& operator=(counted&&) = default;
  ~counted() { ++destroyed; }

  static inline int copies = 0;
};

/// Counts live objects of `counted` between construction and destruction; the test asserts the balance.
struct lifetime_check {
  lifetime_check() {
    counted::reset();
    counted::copies = 0;
  }
  [[nodiscard]] static int alive() noexcept { return counted::alive(); }
};

} // namespace corio::testing
