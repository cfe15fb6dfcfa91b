#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A gRPC receiver for the tests: serves ProfilesService/Export on 127.0.0.1
with Debian's grpcio (a gRPC implementation we did not write), without
generated code: every request's bytes (already un-gzipped by grpcio) are
written to DIR/req-N.bin with its metadata in DIR/req-N.meta, for protoc
--decode to check.

usage: grpcsink.py DIR [--fail N CODE]   (answer the first N calls with CODE,
e.g. UNAVAILABLE or INVALID_ARGUMENT). Prints the port, then serves until killed.
"""
import os
import sys
import threading
from concurrent import futures

import grpc

METHOD = "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"


def main():
    out = sys.argv[1]
    fail_n, fail_code = 0, grpc.StatusCode.OK
    if len(sys.argv) >= 5 and sys.argv[2] == "--fail":
        fail_n, fail_code = int(sys.argv[3]), getattr(grpc.StatusCode, sys.argv[4])
    lock = threading.Lock()
    state = {"calls": 0, "stored": 0}

    def export(request, context):
        with lock:
            state["calls"] += 1
            call = state["calls"]
        if call <= fail_n:
            context.abort(fail_code, "grpcsink: failing call %d on purpose" % call)
        with lock:
            state["stored"] += 1
            n = state["stored"]
        md = dict(context.invocation_metadata())
        with open(os.path.join(out, "req-%d.meta" % n), "w") as f:
            for k in sorted(md):
                f.write("%s: %s\n" % (k, md[k]))
        with open(os.path.join(out, "req-%d.bin" % n), "wb") as f:
            f.write(request)
        return b""  # an empty ExportProfilesServiceResponse: all accepted

    handler = grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.profiles.v1development.ProfilesService",
        {"Export": grpc.unary_unary_rpc_method_handler(export)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
