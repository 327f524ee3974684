// Reads a bank card from an image file and an invoice title from the text of its QR code, with
// ocrgate.
//
// The stubs are generated from the proto, never committed (see examples/java/README.md):
//
//   java OcrgateExample [--addr 127.0.0.1:50051] [--timeout-ms 10000] card.jpg 'https://mp.weixin.qq.com/…'
//
// An API key in OCRGATE_API_KEY is sent as "authorization: Bearer <key>". On failure it prints the
// status code and the reason of the google.rpc.ErrorInfo ocrgate attaches, and exits 1.

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.ErrorInfo;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.MetadataUtils;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import ocrgate.v1.OcrServiceGrpc;
import ocrgate.v1.Ocrgate.ImageWarning;
import ocrgate.v1.Ocrgate.ParseInvoiceTitleRequest;
import ocrgate.v1.Ocrgate.ParseInvoiceTitleResponse;
import ocrgate.v1.Ocrgate.RecognizeBankCardRequest;
import ocrgate.v1.Ocrgate.RecognizeBankCardResponse;

public final class OcrgateExample {
  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  public static void main(String[] args) throws Exception {
    String addr = "127.0.0.1:50051";
    long timeoutMs = 10_000;
    List<String> positional = new ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--addr" -> addr = args[++i];
        case "--timeout-ms" -> timeoutMs = Long.parseLong(args[++i]);
        default -> positional.add(args[i]);
      }
    }
    if (positional.size() != 2) {
      System.err.println("usage: OcrgateExample [--addr HOST:PORT] [--timeout-ms N] IMAGE SCAN_TEXT");
      System.exit(2);
    }
    byte[] image = Files.readAllBytes(Path.of(positional.get(0)));

    // A plaintext channel, as to a gateway on loopback or behind a mesh sidecar; with TLS, drop
    // usePlaintext().
    ManagedChannel channel = ManagedChannelBuilder.forTarget(addr).usePlaintext().build();
    int exit = 0;
    try {
      OcrServiceGrpc.OcrServiceBlockingStub stub = OcrServiceGrpc.newBlockingStub(channel);
      String key = System.getenv("OCRGATE_API_KEY");
      if (key != null && !key.isEmpty()) {
        Metadata headers = new Metadata();
        headers.put(AUTHORIZATION, "Bearer " + key);
        stub = stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
      }
      run(stub, image, positional.get(1), timeoutMs);
    } catch (StatusRuntimeException err) {
      System.out.println(describe(err));
      exit = 1;
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    System.exit(exit);
  }

  private static void run(
      OcrServiceGrpc.OcrServiceBlockingStub stub, byte[] image, String scanText, long timeoutMs) {
    // A deadline for each call: the gateway stops working on a call whose caller gave up.
    RecognizeBankCardResponse card =
        stub.withDeadlineAfter(timeoutMs, TimeUnit.MILLISECONDS)
            .recognizeBankCard(
                RecognizeBankCardRequest.newBuilder().setImage(ByteString.copyFrom(image)).build());
    System.out.println("card_number=" + card.getCardNumber());
    System.out.println("bank=" + orDash(card.getIssuer().getBankCode()));
    // What the provider read beyond the number; each is unset when it gave none.
    if (card.hasExpiry()) {
      System.out.printf(
          "expiry=%02d/%d%n", card.getExpiry().getMonth(), card.getExpiry().getYear());
    }
    List<String> warnings = new ArrayList<>();
    for (ImageWarning warning : card.getWarningsList()) {
      warnings.add(warning.name());
    }
    System.out.println("warnings=" + orDash(String.join(",", warnings)));
    System.out.println("quality=" + (card.hasQuality() ? card.getQuality() : "-"));

    ParseInvoiceTitleResponse title =
        stub.withDeadlineAfter(timeoutMs, TimeUnit.MILLISECONDS)
            .parseInvoiceTitle(ParseInvoiceTitleRequest.newBuilder().setScanText(scanText).build());
    System.out.println("title=" + title.getTitle());
    System.out.println(
        "tax_number=" + title.getTaxNumber() + " valid=" + title.getTaxNumberValid());
  }

  /** The status code and, from the ErrorInfo detail, the reason and the vendor's error code. */
  private static String describe(StatusRuntimeException err) {
    String reason = "";
    String errcode = "";
    com.google.rpc.Status status = StatusProto.fromThrowable(err);
    for (Any detail : status == null ? List.<Any>of() : status.getDetailsList()) {
      if (detail.is(ErrorInfo.class)) {
        try {
          ErrorInfo info = detail.unpack(ErrorInfo.class);
          reason = info.getReason();
          errcode = info.getMetadataOrDefault("errcode", "");
        } catch (InvalidProtocolBufferException malformed) {
          reason = "(malformed ErrorInfo)";
        }
      }
    }
    return "error code=" + err.getStatus().getCode() + " reason=" + reason + " errcode=" + errcode;
  }

  private static String orDash(String s) {
    return s.isEmpty() ? "-" : s;
  }
}
