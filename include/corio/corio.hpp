// corio: asyncio for C++20. The umbrella header.
#pragma once

// Coroutine types (no loop needed)
#include "corio/coroutine.hpp"
#include "corio/errors.hpp"
#include "corio/generator.hpp"
#include "corio/none.hpp"
#include "corio/round_robin.hpp"
#include "corio/step.hpp"
#include "corio/version.hpp"
#include "corio/yield_from.hpp"

// The event loop, tasks and futures
#include "corio/clock.hpp"
#include "corio/context_var.hpp"
#include "corio/debug.hpp"
#include "corio/event_loop.hpp"
#include "corio/future.hpp"
#include "corio/io.hpp"
#include "corio/run.hpp"
#include "corio/runner.hpp"
#include "corio/runtime.hpp"
#include "corio/sleep.hpp"
#include "corio/spawn.hpp"
#include "corio/task_ref.hpp"
#include "corio/task.hpp"
#include "corio/task_group.hpp"
#include "corio/this_task.hpp"
#include "corio/timeout.hpp"

// Combinators, async generators
#include "corio/as_completed.hpp"
#include "corio/async_generator.hpp"
#include "corio/gather.hpp"
#include "corio/outcome.hpp"
#include "corio/shield.hpp"
#include "corio/wait.hpp"

// The outside world: threads, files, signals, subprocesses
#include "corio/channel.hpp"
#include "corio/files.hpp"
#include "corio/process.hpp"
#include "corio/process_options.hpp"
#include "corio/subprocess_protocol.hpp"
#include "corio/signals.hpp"
#include "corio/thread_pool.hpp"
#include "corio/thread_future.hpp"
#include "corio/to_thread.hpp"

// Synchronisation primitives
#include "corio/sync.hpp"

// Networking: sockets, datagrams, streams, servers
#include "corio/net.hpp"
