// corio's networking: addresses, sockets, the sock_* operations, datagrams, streams and servers.
#pragma once

#include "corio/net/address.hpp"
#include "corio/net/connection.hpp"
#include "corio/net/datagram.hpp"
#include "corio/net/datagram_protocol.hpp"
#include "corio/net/pipe.hpp"
#include "corio/net/protocol.hpp"
#include "corio/net/resolve.hpp"
#include "corio/net/server.hpp"
#include "corio/net/socket.hpp"
#include "corio/net/socket_ops.hpp"
#include "corio/net/stream_errors.hpp"
#include "corio/net/stream_options.hpp"
#include "corio/net/stream_reader.hpp"
#include "corio/net/stream_writer.hpp"
#include "corio/net/tls.hpp"
