// Giving memory back once a burst is over, and after the start (src/app/memory-reducer.ts).
// Three calls Node does not offer from JavaScript:
//  - reduce(): V8's LowMemoryNotification, a full GC that selects fragmented old-space pages for
//    evacuation (a compacting, memory-reducing GC; `gc()` from --expose-gc is a plain one that
//    leaves pages half empty after a burst of short-lived objects).
//  - trim(): glibc's malloc_trim(0), which returns the free pages inside the main arena's brk
//    heap and the thread arenas to the kernel. free() only shrinks the brk heap from its top, and
//    a few small live blocks above the free space (the Buffers of the worker channel's reads)
//    keep it from shrinking.
//  - dropExecutable(): unmaps the node binary's clean pages from this process (below).
// Synchronous: the caller runs them only when the node is quiet.
#include <node_api.h>
#include <v8.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
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

#if defined(__linux__)
// Unmap from this process the pages of its executable's read-only mappings that are still the
// file's own: present (pagemap bit 63) and file-backed (bit 61). The page cache keeps them, shared
// with every process of the same binary, and an access maps them again (a minor fault), exactly
// as when the kernel reclaims clean file pages under pressure. Pages a relocation wrote (the
// RELRO part's private copies) are anonymous: bit 61 clear, left alone. Returns bytes unmapped.
uint64_t DropExecutablePages() {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return 0;
  exe[n] = 0;
  FILE* maps = fopen("/proc/self/maps", "re");
  if (maps == nullptr) return 0;
  int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (pagemap < 0) { fclose(maps); return 0; }
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  uint64_t dropped = 0;
  char line[PATH_MAX + 256];
  uint64_t entries[512];
  while (fgets(line, sizeof line, maps) != nullptr) {
    unsigned long start = 0, end = 0;
    char perms[8] = "";
    int path_at = 0;
    if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &start, &end, perms, &path_at) < 3 || path_at == 0) continue;
    char* path = line + path_at;
    path[strcspn(path, "\n")] = 0;
    if (strcmp(path, exe) != 0 || perms[0] != 'r' || perms[1] == 'w') continue;
    uint64_t run_start = 0, run_pages = 0;
    for (uint64_t at = start; at < end;) {
      uint64_t count = (end - at) / page;
      if (count > 512) count = 512;
      ssize_t got = pread(pagemap, entries, count * sizeof(uint64_t), static_cast<off_t>(at / page * sizeof(uint64_t)));
      if (got <= 0) break;
      count = static_cast<uint64_t>(got) / sizeof(uint64_t);
      for (uint64_t i = 0; i < count; i++, at += page) {
        const bool file_page = (entries[i] >> 63 & 1) && (entries[i] >> 61 & 1);
        if (file_page) {
          if (run_pages == 0) run_start = at;
          run_pages++;
          continue;
        }
        if (run_pages > 0 && madvise(reinterpret_cast<void*>(run_start), run_pages * page, MADV_DONTNEED) == 0) dropped += run_pages * page;
        run_pages = 0;
      }
    }
    if (run_pages > 0 && madvise(reinterpret_cast<void*>(run_start), run_pages * page, MADV_DONTNEED) == 0) dropped += run_pages * page;
  }
  close(pagemap);
  fclose(maps);
  return dropped;
}
#endif

napi_value DropExecutable(napi_env env, napi_callback_info) {
  double bytes = 0;
#if defined(__linux__)
  bytes = static_cast<double>(DropExecutablePages());
#endif
  napi_value result;
  napi_create_double(env, bytes, &result);
  return result;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"reduce", nullptr, Reduce, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"trim", nullptr, Trim, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"dropExecutable", nullptr, DropExecutable, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, 3, props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
