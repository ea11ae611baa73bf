// What a server tells the handler it starts (internal): where a protocol handler says how close_clients()
// closes its connection.
#pragma once

#include <functional>

namespace corio::detail {

/// Set by the server just before it starts a connection's handler, which runs at once up to its first
/// suspension: a protocol handler (create_server) takes it first thing and stores there how to close its
/// connection gracefully (transport.close(): flush, then close), so that close_clients() does that, as
/// asyncio's Server.close_clients does, instead of cancelling the handler. Null otherwise; a stream
/// handler leaves it alone (its connection is closed by cancelling it).
std::function<void()>*& handler_close_slot() noexcept;

} // namespace corio::detail
