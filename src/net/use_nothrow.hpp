#pragma once
// The completion token of the project's coroutines: `co_await op(..., use_nothrow)`
// gives a tuple whose first element is the error code, where asio::use_awaitable alone
// would throw. Errors caused by traffic are values here (a closed peer, a timeout), not
// exceptions.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace chatorbit::net {

inline constexpr auto use_nothrow = boost::asio::as_tuple(boost::asio::use_awaitable);

}  // namespace chatorbit::net
