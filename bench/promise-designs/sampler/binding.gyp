{ "targets": [ { "target_name": "sampler", "sources": ["sampler.cc"], "cflags_cc": ["-O2", "-fno-omit-frame-pointer"] } ] }
