{
  "targets": [
    {
      "target_name": "sigverify",
      "sources": ["sigverify.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    },
    {
      "target_name": "memory",
      "sources": ["memory.cc"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
