"""Read a bank card from an image file and an invoice title from a QR code, with ocrgate.

The stubs are generated from the proto, never committed:

    python -m grpc_tools.protoc -I proto --python_out=gen --grpc_python_out=gen \
        proto/ocrgate/v1/ocrgate.proto
    PYTHONPATH=gen python examples/python/ocrgate_example.py card.jpg 'https://mp.weixin.qq.com/…'
    PYTHONPATH=gen python examples/python/ocrgate_example.py card.jpg qr-screenshot.png

The title comes from the QR code's text, or from a photo or screenshot of the code (a file), which
the gateway decodes.

Needs: grpcio, grpcio-status, googleapis-common-protos (and grpcio-tools to generate).
"""

import argparse
import os
import sys

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from ocrgate.v1 import ocrgate_pb2, ocrgate_pb2_grpc


def error_info(err: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The google.rpc.ErrorInfo ocrgate attaches to every error: branch on its reason."""
    status = rpc_status.from_call(err)
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", help="a JPEG, PNG, BMP, GIF or WebP file")
    parser.add_argument(
        "scan_text", help="the text of an invoice title QR code, or an image file holding the code"
    )
    parser.add_argument("--addr", default="127.0.0.1:50051")
    args = parser.parse_args()

    with open(args.image, "rb") as image, grpc.insecure_channel(args.addr) as channel:
        stub = ocrgate_pb2_grpc.OcrServiceStub(channel)
        try:
            card = stub.RecognizeBankCard(
                ocrgate_pb2.RecognizeBankCardRequest(image=image.read()), timeout=10
            )
            print(f"card_number={card.card_number}")
            print(f"bank={card.issuer.bank_code or '-'}")
            # What the provider read beyond the number; each is unset when it gave none.
            if card.HasField("expiry"):
                print(f"expiry={card.expiry.month:02d}/{card.expiry.year}")
            warnings = [ocrgate_pb2.ImageWarning.Name(w) for w in card.warnings]
            print(f"warnings={','.join(warnings) or '-'}")
            print(f"quality={card.quality if card.HasField('quality') else '-'}")
            if os.path.isfile(args.scan_text):
                with open(args.scan_text, "rb") as qr:
                    title_request = ocrgate_pb2.ParseInvoiceTitleRequest(qr_image=qr.read())
            else:
                title_request = ocrgate_pb2.ParseInvoiceTitleRequest(scan_text=args.scan_text)
            title = stub.ParseInvoiceTitle(title_request, timeout=10)
            print(f"title={title.title}")
            print(f"tax_number={title.tax_number} valid={title.tax_number_valid}")
        except grpc.RpcError as err:
            info = error_info(err)
            reason = info.reason if info else ""
            errcode = info.metadata.get("errcode", "") if info else ""
            print(f"error code={err.code().name} reason={reason} errcode={errcode}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
