"""hello-http in Python: every request gets a greeting, as examples/components/hello-http does.
Built into a component with componentize-py (scripts/build-python-example.sh) for `make bench`:
each fresh instance starts CPython's state afresh, which is what warm pools avoid."""

from componentize_py_types import Ok
from wit_world import exports
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)

GREETING = b"Hello from Python!\n"


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain")]))
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        with body.write() as stream:
            stream.blocking_write_and_flush(GREETING)
        OutgoingBody.finish(body, None)
