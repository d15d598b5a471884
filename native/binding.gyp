{
  "targets": [
    {
      "target_name": "flowtrail_netlink",
      "sources": ["src/netlink.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    }
  ]
}
