// Read a bank card from an image file and an invoice title from a QR code, with ocrgate.
//
//   npm ci --prefix examples/node
//   node examples/node/ocrgate_example.js card.jpg 'https://mp.weixin.qq.com/…' [127.0.0.1:50051]
//   node examples/node/ocrgate_example.js card.jpg qr-screenshot.png [127.0.0.1:50051]
//
// The proto is loaded at run time (@grpc/proto-loader): nothing is generated.

'use strict';

const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');
const googleProtos = require('google-proto-files');

const PROTO = path.join(__dirname, '..', '..', 'proto', 'ocrgate', 'v1', 'ocrgate.proto');

const definition = protoLoader.loadSync(PROTO, { keepCase: true, enums: String, defaults: true, oneofs: true });
const { OcrService } = grpc.loadPackageDefinition(definition).ocrgate.v1;

// google.rpc.Status and ErrorInfo, to read the details ocrgate attaches to every error.
const rpcTypes = protobuf.loadSync([
  googleProtos.getProtoPath('rpc', 'status.proto'),
  googleProtos.getProtoPath('rpc', 'error_details.proto'),
]);
const Status = rpcTypes.lookupType('google.rpc.Status');
const ErrorInfo = rpcTypes.lookupType('google.rpc.ErrorInfo');

function errorInfo(err) {
  const [details] = err.metadata ? err.metadata.get('grpc-status-details-bin') : [];
  if (!details) return undefined;
  const any = Status.decode(details).details.find((d) => d.type_url.endsWith('google.rpc.ErrorInfo'));
  return any && ErrorInfo.decode(any.value);
}

function call(client, method, request) {
  const deadline = new Date(Date.now() + 10_000);
  return new Promise((resolve, reject) => {
    client[method](request, { deadline }, (err, reply) => (err ? reject(err) : resolve(reply)));
  });
}

async function main() {
  const [image, scanText, address = '127.0.0.1:50051'] = process.argv.slice(2);
  const client = new OcrService(address, grpc.credentials.createInsecure());
  try {
    const card = await call(client, 'RecognizeBankCard', { image: fs.readFileSync(image) });
    console.log(`card_number=${card.card_number}`);
    console.log(`bank=${card.issuer ? card.issuer.bank_code : '-'}`);
    // What the provider read beyond the number; each is unset when it gave none.
    if (card.expiry) {
      console.log(`expiry=${String(card.expiry.month).padStart(2, '0')}/${card.expiry.year}`);
    }
    console.log(`warnings=${card.warnings.join(',') || '-'}`);
    console.log(`quality=${card._quality ? card.quality : '-'}`);
    // The QR code's text, or a photo or screenshot of the code (a file) that the gateway decodes.
    const titleRequest = fs.existsSync(scanText) && fs.statSync(scanText).isFile()
      ? { qr_image: fs.readFileSync(scanText) }
      : { scan_text: scanText };
    const title = await call(client, 'ParseInvoiceTitle', titleRequest);
    console.log(`title=${title.title}`);
    console.log(`tax_number=${title.tax_number} valid=${title.tax_number_valid}`);
  } catch (err) {
    const info = errorInfo(err);
    const code = Object.keys(grpc.status).find((name) => grpc.status[name] === err.code);
    console.log(`error code=${code} reason=${info ? info.reason : ''} errcode=${info ? info.metadata.errcode || '' : ''}`);
    process.exitCode = 1;
  } finally {
    client.close();
  }
}

main();
