// corio's synchronisation primitives for tasks of one event loop (asyncio's lock, event, condition,
// semaphores, barrier and queues: FIFO, priority, LIFO). Each is FIFO-fair, cancellation-safe and
// allocation-free per wait.
#pragma once

#include "corio/sync/barrier.hpp"
#include "corio/sync/condition.hpp"
#include "corio/sync/event.hpp"
#include "corio/sync/lifo_queue.hpp"
#include "corio/sync/lock.hpp"
#include "corio/sync/priority_queue.hpp"
#include "corio/sync/queue.hpp"
#include "corio/sync/semaphore.hpp"
#include "corio/sync/waiter.hpp"
