{
  "variables": {
    "kdrops%": "<!(sh bpf/detect.sh)"
  },
  "targets": [
    {
      "target_name": "flowtrail_netlink",
      "sources": ["src/netlink.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    },
    {
      "target_name": "flowtrail_kdrops",
      "conditions": [
        ["OS!='linux' or kdrops!=1", {"type": "none"}, {
          "sources": ["src/kdrops.c"],
          "defines": ["NAPI_VERSION=8"],
          "include_dirs": ["<(INTERMEDIATE_DIR)"],
          "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"],
          "libraries": ["-lbpf"],
          "actions": [
            {
              "action_name": "bpf_skeleton",
              "inputs": ["bpf/kfree_skb.bpf.c", "bpf/kdrops-types.h", "bpf/sim-tc-policy.bpf.c", "bpf/build.sh"],
              "outputs": ["<(INTERMEDIATE_DIR)/kdrops.skel.h", "<(PRODUCT_DIR)/sim-tc-policy.bpf.o"],
              "action": ["sh", "bpf/build.sh", "<(INTERMEDIATE_DIR)", "<(PRODUCT_DIR)"]
            }
          ]
        }]
      ]
    }
  ]
}
