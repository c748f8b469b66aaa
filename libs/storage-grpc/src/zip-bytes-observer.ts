import { ServerInterceptingCall, status, type ServerInterceptor } from '@grpc/grpc-js';
import { storageV1 } from '@modproxy/contracts';

/** Zip bytes through the storage service, for metrics. */
export interface ZipBytesListener {
  /** Bytes of a zip sent to a GetZip caller, told as each chunk goes out. */
  served(bytes: number): void;
  /** Bytes of a zip whose Save stored it, told once the save answered OK. */
  saved(bytes: number): void;
}

const GET_ZIP = storageV1.StorageServiceService.getZip.path;
const SAVE = storageV1.StorageServiceService.save.path;

function chunkBytes(message: storageV1.GetZipResponse | storageV1.SaveRequest): number {
  return message.part?.$case === 'chunk' ? message.part.value.length : 0;
}

/**
 * Counts the zip bytes of GetZip and Save calls from their messages, so the handlers stay as
 * they are: served bytes as they are sent (a rate shows while a large zip is streaming), saved
 * bytes only for an upload that was stored (a refused or cut-off upload stored nothing).
 */
export function observeZipBytes(listener: ZipBytesListener): ServerInterceptor {
  return (descriptor, call) => {
    if (descriptor.path === GET_ZIP) {
      return new ServerInterceptingCall(call, {
        sendMessage: (message: storageV1.GetZipResponse, next) => {
          const bytes = chunkBytes(message);
          if (bytes > 0) safely(() => listener.served(bytes));
          next(message);
        },
      });
    }
    if (descriptor.path === SAVE) {
      let received = 0;
      return new ServerInterceptingCall(call, {
        start: (next) =>
          next({
            onReceiveMessage: (message: storageV1.SaveRequest, forward) => {
              received += chunkBytes(message);
              forward(message);
            },
          }),
        sendStatus: (sent, next) => {
          if (sent.code === status.OK) safely(() => listener.saved(received));
          next(sent);
        },
      });
    }
    return new ServerInterceptingCall(call);
  };
}

function safely(record: () => void): void {
  try {
    record();
  } catch {
    // Metrics must never change an answer.
  }
}
