// The sampler's Node-API functions (sampler-binding.cpp), added to the addon's exports.
#pragma once
#include <node_api.h>

namespace ck {

void register_sampler_functions(napi_env env, napi_value exports);

}  // namespace ck
