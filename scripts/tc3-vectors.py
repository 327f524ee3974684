"""Signs requests with Tencent Cloud's own Python SDK (tencentcloud-sdk-python-common), so the
gateway's TC3-HMAC-SHA256 signer is checked against the vendor's implementation, not only against
our simulator.

Reads a JSON list of cases on stdin, each {"secret_id", "secret_key", "timestamp", "host",
"params"}, and writes a JSON list of {"body", "content_type", "authorization"}: the exact body and
content type the SDK sends, and the Authorization header it signs them with.
"""

import json
import sys
from unittest import mock

from tencentcloud.common import credential
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.http.request import RequestInternal
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile


def sign(case):
    http = HttpProfile(endpoint=case["host"])
    client = CommonClient(
        "ocr",
        "2018-11-19",
        credential.Credential(case["secret_id"], case["secret_key"]),
        "ap-guangzhou",
        ClientProfile(httpProfile=http),
    )
    request = RequestInternal(case["host"], "POST", "/")
    with mock.patch("time.time", return_value=case["timestamp"]):
        client._build_req_with_tc3_signature("BankCardOCR", case["params"], request)
    return {
        "body": request.data,
        "content_type": request.header["Content-Type"],
        "authorization": request.header["Authorization"],
    }


if __name__ == "__main__":
    json.dump([sign(case) for case in json.load(sys.stdin)], sys.stdout)
