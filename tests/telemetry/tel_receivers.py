"""Real OTLP receivers on 127.0.0.1 (HTTP/protobuf and gRPC) that decode what arrives, for tests and benchmarks."""

from __future__ import annotations

import gzip
import threading
import zlib
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


def value_of(v: Any) -> Any:
    """A Python value from an OTLP ``AnyValue``."""
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value_of(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value_of(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


class Received:
    """Spans decoded from every request, flattened to dicts."""

    def __init__(self) -> None:
        self.requests = 0
        self.spans: list[dict[str, Any]] = []
        self.resources: list[dict[str, Any]] = []
        self.scopes: list[tuple[str, str]] = []
        self.content_types: list[str] = []
        self.encodings: list[str] = []
        self.lock = threading.Lock()
        self.arrived = threading.Event()

    def add(self, req: trace_service_pb2.ExportTraceServiceRequest) -> None:
        with self.lock:
            self.requests += 1
            for rs in req.resource_spans:
                self.resources.append({kv.key: value_of(kv.value) for kv in rs.resource.attributes})
                for ss in rs.scope_spans:
                    self.scopes.append((ss.scope.name, ss.schema_url))
                    for s in ss.spans:
                        self.spans.append({
                            "name": s.name,
                            "trace_id": s.trace_id.hex(),
                            "span_id": s.span_id.hex(),
                            "parent": s.parent_span_id.hex() or None,
                            "kind": s.kind,
                            "start": s.start_time_unix_nano,
                            "end": s.end_time_unix_nano,
                            "attributes": {kv.key: value_of(kv.value) for kv in s.attributes},
                            "events": [(e.name, {kv.key: value_of(kv.value) for kv in e.attributes})
                                       for e in s.events],
                            "status": s.status.code,
                        })  # fmt: skip
        self.arrived.set()

    def named(self, prefix: str) -> list[dict[str, Any]]:
        with self.lock:
            return [s for s in self.spans if s["name"].startswith(prefix)]


class HttpReceiver(Received):
    """``POST /v1/traces`` with ``application/x-protobuf`` bodies (gzip or deflate), like a collector's receiver."""

    def __init__(self) -> None:
        super().__init__()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                enc = (self.headers.get("content-encoding") or "").lower()
                outer.encodings.append(enc)
                if enc == "gzip":
                    body = gzip.decompress(body)
                elif enc == "deflate":
                    body = zlib.decompress(body)
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                outer.content_types.append(self.headers.get("content-type") or "")
                req = trace_service_pb2.ExportTraceServiceRequest()
                req.ParseFromString(body)
                outer.add(req)
                out = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> HttpReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class GrpcReceiver(Received):
    """An OTLP/gRPC ``TraceService`` on 127.0.0.1."""

    def __init__(self) -> None:
        super().__init__()
        import grpc

        outer = self

        class Service(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:  # the gRPC method name
                outer.add(request)
                return trace_service_pb2.ExportTraceServiceResponse()

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> GrpcReceiver:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(grace=None)
