// corio: asyncio for C++20. The umbrella header.
#pragma once

#include "corio/coroutine.hpp"
#include "corio/errors.hpp"
#include "corio/generator.hpp"
#include "corio/none.hpp"
#include "corio/round_robin.hpp"
#include "corio/step.hpp"
#include "corio/version.hpp"
#include "corio/yield_from.hpp"
