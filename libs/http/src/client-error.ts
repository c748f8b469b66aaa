import type { Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * Answers requests that node:http cannot parse (a byte outside the URL grammar, a header too
 * large) in text/plain, like every other error here, instead of node's bare `400 Bad Request`
 * without a body, or a dropped connection.
 */
export function answerClientErrorsInText(server: Server): void {
  server.on('clientError', (error: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Duplex) => {
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, reason] =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large']
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request Timeout']
          : [400, 'Bad Request'];
    const body = `${reason.toLowerCase()}: the request could not be parsed\n`;
    // A HEAD answer has no body; the request line is readable up to the method.
    const head = error.rawPacket?.subarray(0, 5).toString('latin1') === 'HEAD ';
    const answer = () => {
      if (!socket.writable) return socket.destroy();
      socket.end(
        `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n` +
          (head ? '' : body),
      );
    };
    // A keep-alive client sends its next request once it has every byte of the previous answer,
    // which may be before the server has finished that answer (a zip stream not yet ended):
    // answer after it, never into the middle of it.
    const previous = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
    if (!previous || previous.writableFinished) return answer();
    previous.once('finish', answer);
    previous.once('close', () => {
      if (!previous.writableFinished) socket.destroy();
    });
  });
}
