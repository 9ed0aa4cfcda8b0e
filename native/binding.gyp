{
  "targets": [
    {
      "target_name": "sigverify",
      "sources": ["sigverify.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
