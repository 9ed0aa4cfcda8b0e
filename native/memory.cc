// Giving memory back once a burst is over (src/app/memory-reducer.ts). Two calls Node does not
// offer from JavaScript:
//  - reduce(): V8's LowMemoryNotification, a full GC that selects fragmented old-space pages for
//    evacuation (a compacting, memory-reducing GC; `gc()` from --expose-gc is a plain one that
//    leaves pages half empty after a burst of short-lived objects).
//  - trim(): glibc's malloc_trim(0), which returns the free pages inside the main arena's brk
//    heap and the thread arenas to the kernel. free() only shrinks the brk heap from its top, and
//    a few small live blocks above the free space (the Buffers of the worker channel's reads)
//    keep it from shrinking.
// Synchronous: the caller runs them only when the node is quiet.
#include <node_api.h>
#include <v8.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace {

napi_value Reduce(napi_env env, napi_callback_info) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->LowMemoryNotification();
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  return undefined;
}

napi_value Trim(napi_env env, napi_callback_info) {
  bool released = false;
#if defined(__GLIBC__)
  released = malloc_trim(0) == 1;
#endif
  napi_value result;
  napi_get_boolean(env, released, &result);
  return result;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"reduce", nullptr, Reduce, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"trim", nullptr, Trim, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, 2, props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
