// hello-http in JavaScript: every request gets a greeting, as examples/components/hello-http
// does. Built into a component with componentize-js (scripts/build-js-example.sh).
//
// The handler is exported explicitly (wasi:http/incoming-handler) rather than through
// `addEventListener("fetch", ...)`: StarlingMonkey's fetch event serves one request per
// instance, while an exported handler can be called again, so a warm pool reuses the instance.
import {
  Fields,
  OutgoingBody,
  OutgoingResponse,
  ResponseOutparam,
} from "wasi:http/types@0.2.10";

const encoder = new TextEncoder();
const greeting = encoder.encode("Hello from JavaScript!\n");
const contentType = encoder.encode("text/plain");

export const incomingHandler = {
  handle(_request, responseOut) {
    const response = new OutgoingResponse(Fields.fromList([["content-type", contentType]]));
    const body = response.body();
    ResponseOutparam.set(responseOut, { tag: "ok", val: response });
    const stream = body.write();
    stream.blockingWriteAndFlush(greeting);
    // The stream is a child of the body: it must be dropped before the body is finished.
    stream[Symbol.dispose]();
    OutgoingBody.finish(body, undefined);
  },
};
