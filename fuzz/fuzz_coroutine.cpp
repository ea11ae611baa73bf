// Fuzz target: coroutine<int, int, int> driven by next / send / throw_ / close in any order, with
// delegation (yield_from) up to a few levels deep, against a reference model of PEP 342 and PEP 380.
//
// The input describes a few "scripts" (coroutine bodies): each is a list of steps — yield a value, or
// delegate to a later script with yield_from — and each step says what happens when an exception arrives
// there: let it through, catch only the thrown error, or catch anything and go on / return a value /
// yield once more. Both the real coroutines and the model record a trace (what each body received,
// caught and got back from a delegation, and what each operation returned or raised); they must be equal.
//
// The model follows Python: throw() goes to the innermost coroutine and propagates outwards; close() on
// a delegating coroutine closes the delegate first and then raises GeneratorExit in the delegating one
// (or the error the delegate's close raised); a coroutine that yields while being closed makes close()
// raise "ignored" and stays suspended there. (See model::close_from for the one documented difference.)
// FUZZ_COROUTINE_PYTHON=1 prints the input as a Python program, to check the model against CPython.
#include <corio/coroutine.hpp>
#include <corio/errors.hpp>
#include <corio/yield_from.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace {

struct boom {
  int id;
};

enum policy : int { let_through, catch_boom, catch_all, catch_return, catch_yield };
enum event : int {
  recv,
  recv2,
  got_return,
  caught,
  r_yield = 100,
  r_return,
  r_exhausted,
  r_boom,
  r_ignored,
  r_just_started,
  r_closed
};
enum class exc : int { none, boom, exit, ignored };

struct step {
  bool delegate;
  int value; // yielded value, or the script delegated to
  policy pol;
  int pv; // catch_return's return value, catch_yield's yielded value
};
struct script {
  std::vector<step> steps;
  int ret;
};
using trace = std::vector<std::pair<int, int>>;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_coroutine: %s\n", what);
  std::abort();
}

// ---- the real thing ------------------------------------------------------------------------------

corio::coroutine<int, int, int> body(const std::vector<script>* prog, int index, trace* t) {
  const script& s = (*prog)[static_cast<std::size_t>(index)];
  for (const step& st : s.steps) {
    int code = 0;
    try {
      if (!st.delegate) {
        int x = co_yield st.value;
        t->emplace_back(recv, x);
      } else {
        int r = co_await corio::yield_from(body(prog, st.value, t));
        t->emplace_back(got_return, r);
      }
    } catch (const boom&) {
      if (st.pol == let_through)
        throw;
      code = 1;
    } catch (const corio::generator_exit&) {
      if (st.pol == let_through || st.pol == catch_boom)
        throw;
      code = 2;
    } catch (const corio::ignored_exit_error&) {
      if (st.pol == let_through || st.pol == catch_boom)
        throw;
      code = 3;
    }
    if (code != 0) { // no co_yield / co_return inside a handler: act after it
      t->emplace_back(caught, code);
      if (st.pol == catch_return)
        co_return st.pv;
      if (st.pol == catch_yield) {
        int x = co_yield st.pv;
        t->emplace_back(recv2, x);
      }
    }
  }
  co_return s.ret;
}

// ---- the model -----------------------------------------------------------------------------------

class model {
public:
  model(const std::vector<script>& p, trace& t) : prog_(p), t_(t) {}

  void next() { resume(0, false); }
  void send(int x) { resume(x, true); }

  void throw_(int id) {
    if (state_ == unstarted || state_ == finished) {
      state_ = finished;
      stack_.clear();
      t_.emplace_back(r_boom, id);
      return;
    }
    report(raise_in(0, exc::boom), id);
  }

  void close() {
    if (state_ != suspended) {
      state_ = finished;
      return void(t_.emplace_back(r_closed, 0));
    }
    outcome o = close_from(0);
    if (o.k == outcome::yielded) // the root answered with a yield: it stays suspended there
      return void(t_.emplace_back(r_ignored, 0));
    state_ = finished;
    stack_.clear();
    if (o.k == outcome::raised && o.e != exc::exit)
      return void(t_.emplace_back(o.e == exc::boom ? r_boom : r_ignored, 0));
    t_.emplace_back(r_closed, 0);
  }

private:
  struct frame {
    int script;
    std::size_t pc;
    enum { at_yield, at_yield2, at_delegate } phase;
  };
  struct outcome {
    enum { yielded, returned, raised } k;
    int v;
    exc e;
  };
  enum { unstarted, suspended, finished } state_ = unstarted;

  const step& step_of(const frame& f) const { return prog_[static_cast<std::size_t>(f.script)].steps[f.pc]; }

  void resume(int x, bool is_send) {
    if (state_ == finished)
      return void(t_.emplace_back(r_exhausted, 0));
    if (state_ == unstarted) {
      if (is_send) // sending a value to a just-started coroutine is an error (Python's TypeError)
        return void(t_.emplace_back(r_just_started, 0));
      state_ = suspended;
      stack_.push_back({0, 0, frame::at_yield});
      return report(run(0), 0);
    }
    frame& f = stack_.back();
    t_.emplace_back(f.phase == frame::at_yield2 ? recv2 : recv, x);
    ++f.pc;
    report(run(0), 0);
  }

  void report(const outcome& o, int boom_id) {
    if (o.k == outcome::yielded)
      return void(t_.emplace_back(r_yield, o.v));
    state_ = finished;
    stack_.clear();
    if (o.k == outcome::returned)
      return void(t_.emplace_back(r_return, o.v));
    (void)boom_id;
    t_.emplace_back(o.e == exc::boom ? r_boom : r_ignored, o.e == exc::boom ? last_boom_ : 0);
  }

  /// The frame on top goes on from its pc, until something yields or frame `base` finishes.
  outcome run(std::size_t base) {
    for (;;) {
      frame& f = stack_.back();
      const script& s = prog_[static_cast<std::size_t>(f.script)];
      if (f.pc == s.steps.size()) {
        if (pop_returned(base, s.ret))
          return {outcome::returned, s.ret, exc::none};
        continue;
      }
      const step& st = s.steps[f.pc];
      if (!st.delegate) {
        f.phase = frame::at_yield;
        return {outcome::yielded, st.value, exc::none};
      }
      f.phase = frame::at_delegate;
      stack_.push_back({st.value, 0, frame::at_yield});
    }
  }

  /// The top frame returned r: pops it; true if it was `base`, else the parent records r and moves on.
  bool pop_returned(std::size_t base, int r) {
    const bool is_base = stack_.size() - 1 == base;
    stack_.pop_back();
    if (is_base)
      return true;
    t_.emplace_back(got_return, r);
    ++stack_.back().pc;
    return false;
  }

  /// Exception e arrives where the top frame is suspended; it propagates down to `base` at most.
  outcome raise_in(std::size_t base, exc e) {
    for (;;) {
      frame& f = stack_.back();
      const bool is_base = stack_.size() - 1 == base;
      const bool catches = f.phase != frame::at_yield2 &&
                           (step_of(f).pol >= catch_all || (step_of(f).pol == catch_boom && e == exc::boom));
      if (!catches) {
        stack_.pop_back();
        if (is_base)
          return {outcome::raised, 0, e};
        continue; // into the delegating parent, at its yield_from
      }
      const step& st = step_of(f);
      t_.emplace_back(caught, e == exc::boom ? 1 : e == exc::exit ? 2 : 3);
      switch (st.pol) {
      case catch_return:
        if (pop_returned(base, st.pv))
          return {outcome::returned, st.pv, exc::none};
        return run(base);
      case catch_yield:
        f.phase = frame::at_yield2;
        return {outcome::yielded, st.pv, exc::none};
      default:
        ++f.pc;
        return run(base);
      }
    }
  }

  /// PEP 380's close(): closes the delegate first, then raises GeneratorExit here (or the delegate's
  /// error). Returns raised(exit) or returned for a clean close, yielded when frame i yielded instead
  /// (a non-root frame is then dropped and its parent gets "ignored"), raised(other) otherwise.
  ///
  /// corio's one documented difference: when a delegate yields instead (ignores the close), close()
  /// raises ignored_exit_error at once and the whole chain stays suspended at that yield; Python would
  /// raise RuntimeError in the delegating coroutine and drop the delegate (its finaliser closes it again).
  outcome close_from(std::size_t i) {
    exc e = exc::exit;
    if (stack_[i].phase == frame::at_delegate) {
      outcome c = close_from(i + 1);
      if (c.k == outcome::yielded)
        return c;
      if (c.k == outcome::raised && c.e != exc::exit)
        e = c.e;
    }
    return raise_in(i, e);
  }

public:
  int last_boom_ = 0;

private:
  const std::vector<script>& prog_;
  trace& t_;
  std::vector<frame> stack_;
};

/// Prints the program and its operations as a Python script that prints CPython's trace (same codes).
void print_python(const std::vector<script>& prog, const std::vector<std::pair<int, int>>& ops) {
  std::printf("class Boom(Exception):\n  def __init__(self, i): self.i = i\nT = []\n");
  for (std::size_t i = 0; i < prog.size(); ++i) {
    std::printf("def s%zu():\n  if False:\n    yield\n", i);
    for (const step& st : prog[i].steps) {
      std::printf("  code = 0\n  try:\n");
      if (st.delegate)
        std::printf("    r = yield from s%d()\n    T.append((%d, r))\n", st.value, got_return);
      else
        std::printf("    x = yield %d\n    T.append((%d, 0 if x is None else x))\n", st.value, recv);
      const char* what = st.pol == let_through ? nullptr : st.pol == catch_boom ? "Boom" : "BaseException";
      if (what != nullptr)
        std::printf("  except %s as e:\n    code = 1 if isinstance(e, Boom) else 2 if isinstance(e, GeneratorExit) "
                    "else 3\n",
                    what);
      else
        std::printf("  finally:\n    pass\n");
      std::printf("  if code:\n    T.append((%d, code))\n", caught);
      if (st.pol == catch_return)
        std::printf("    return %d\n", st.pv);
      if (st.pol == catch_yield)
        std::printf("    x = yield %d\n    T.append((%d, 0 if x is None else x))\n", st.pv, recv2);
    }
    std::printf("  return %d\n", prog[i].ret);
  }
  std::printf("g = s0()\ndef op(f, *a):\n  try:\n    T.append((%d, f(*a)))\n  except StopIteration as e:\n"
              "    T.append((%d if e.value is not None else %d, e.value or 0))\n  except Boom as e:\n"
              "    T.append((%d, e.i))\n  except RuntimeError:\n    T.append((%d, 0))\n  except TypeError:\n"
              "    T.append((%d, 0))\n",
              r_yield, r_return, r_exhausted, r_boom, r_ignored, r_just_started);
  std::printf("def close():\n  try:\n    g.close(); T.append((%d, 0))\n  except Boom as e:\n    T.append((%d, 0))\n"
              "  except RuntimeError:\n    T.append((%d, 0))\n",
              r_closed, r_boom, r_ignored);
  for (const auto& [op, x] : ops) {
    if (op == 0)
      std::printf("op(g.send, None)\n");
    else if (op == 1)
      std::printf("op(g.send, %d)\n", x + 1);
    else if (op == 2)
      std::printf("op(g.throw, Boom(%d))\n", x);
    else
      std::printf("close()\n");
  }
  std::printf("for a, b in T: print(f'{a}:{b}')\n");
  std::fflush(stdout);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  std::vector<script> prog(in.ConsumeIntegralInRange<std::size_t>(1, 4));
  for (std::size_t i = 0; i < prog.size(); ++i) {
    prog[i].ret = in.ConsumeIntegralInRange(0, 99);
    prog[i].steps.resize(in.ConsumeIntegralInRange<std::size_t>(0, 4));
    for (step& st : prog[i].steps) {
      st.delegate = i + 1 < prog.size() && in.ConsumeIntegralInRange(0, 2) == 0;
      st.value = st.delegate ? static_cast<int>(in.ConsumeIntegralInRange<std::size_t>(i + 1, prog.size() - 1))
                             : in.ConsumeIntegralInRange(0, 99);
      st.pol = static_cast<policy>(in.ConsumeIntegralInRange(0, 4));
      st.pv = in.ConsumeIntegralInRange(0, 99);
    }
  }
  std::vector<std::pair<int, int>> ops;
  for (int n = 0; n < 24 && in.remaining_bytes() > 0; ++n) {
    const int op = in.ConsumeIntegralInRange(0, 3);
    ops.emplace_back(op, in.ConsumeIntegralInRange(0, 9));
  }
  if (std::getenv("FUZZ_COROUTINE_PYTHON") != nullptr)
    print_python(prog, ops); // the same program in Python, to check the model against CPython
  trace real, expected;
  model m(prog, expected);
  {
    auto c = body(&prog, 0, &real);
    for (const auto& [op, x] : ops) {
      try {
        if (op == 3) {
          m.close();
          c.close();
          real.emplace_back(r_closed, 0);
          continue;
        }
        corio::step<int, int> s;
        if (op == 0) {
          m.next();
          s = c.next();
        } else if (op == 1) {
          m.send(x + 1);
          s = c.send(x + 1);
        } else {
          m.last_boom_ = x;
          m.throw_(x);
          s = c.throw_(boom{x});
        }
        if (s.is_yield())
          real.emplace_back(r_yield, s.value());
        else if (s.is_return())
          real.emplace_back(r_return, s.return_value());
        else
          real.emplace_back(r_exhausted, 0);
      } catch (const boom& b) {
        real.emplace_back(r_boom, op == 3 ? 0 : b.id);
      } catch (const corio::ignored_exit_error&) {
        real.emplace_back(r_ignored, 0);
      } catch (const corio::just_started_error&) {
        real.emplace_back(r_just_started, 0);
      }
      if (real != expected) {
        for (std::size_t i = 0; i < std::max(real.size(), expected.size()); ++i)
          std::fprintf(stderr, "%3zu real %s model %s\n", i,
                       i < real.size() ? (std::to_string(real[i].first) + ":" + std::to_string(real[i].second)).c_str()
                                       : "-",
                       i < expected.size()
                           ? (std::to_string(expected[i].first) + ":" + std::to_string(expected[i].second)).c_str()
                           : "-");
        fail("the coroutine and the model disagree");
      }
    }
  }
  return 0;
}
