// Command ocrgate-example reads a bank card from an image file and an invoice title from the text
// of its QR code, with ocrgate.
//
// The stubs are generated from the proto, never committed (see examples/go/README.md):
//
//	ocrgate-example [-addr 127.0.0.1:50051] [-timeout 10s] card.jpg 'https://mp.weixin.qq.com/…'
//
// An API key in OCRGATE_API_KEY is sent as "authorization: Bearer <key>". On failure it prints
// the status code and the reason of the google.rpc.ErrorInfo ocrgate attaches, and exits 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	ocrgate "example.com/ocrgate-client/gen/ocrgatev1"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "the gateway's address")
	timeout := flag.Duration("timeout", 10*time.Second, "the deadline of each call")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: ocrgate-example [-addr HOST:PORT] [-timeout 10s] IMAGE SCAN_TEXT")
		os.Exit(2)
	}
	image, err := os.ReadFile(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// A plaintext connection, as to a gateway on loopback or behind a mesh sidecar; with TLS, use
	// grpc.WithTransportCredentials(credentials.NewTLS(...)).
	conn, err := grpc.Dial(*addr, grpc.WithInsecure())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer conn.Close()
	if err := run(ocrgate.NewOcrServiceClient(conn), image, flag.Arg(1), *timeout); err != nil {
		fmt.Println(describe(err))
		os.Exit(1)
	}
}

func run(client ocrgate.OcrServiceClient, image []byte, scanText string, timeout time.Duration) error {
	ctx, cancel := callContext(timeout)
	defer cancel()
	card, err := client.RecognizeBankCard(ctx, &ocrgate.RecognizeBankCardRequest{
		Source: &ocrgate.RecognizeBankCardRequest_Image{Image: image},
	})
	if err != nil {
		return err
	}
	fmt.Printf("card_number=%s\n", card.GetCardNumber())
	fmt.Printf("bank=%s\n", orDash(card.GetIssuer().GetBankCode()))
	// What the provider read beyond the number; each is unset when it gave none.
	if expiry := card.GetExpiry(); expiry != nil {
		fmt.Printf("expiry=%02d/%d\n", expiry.GetMonth(), expiry.GetYear())
	}
	warnings := make([]string, 0, len(card.GetWarnings()))
	for _, warning := range card.GetWarnings() {
		warnings = append(warnings, warning.String())
	}
	fmt.Printf("warnings=%s\n", orDash(strings.Join(warnings, ",")))
	if card.Quality != nil {
		fmt.Printf("quality=%d\n", card.GetQuality())
	} else {
		fmt.Println("quality=-")
	}

	ctx, cancel = callContext(timeout)
	defer cancel()
	title, err := client.ParseInvoiceTitle(ctx, &ocrgate.ParseInvoiceTitleRequest{ScanText: scanText})
	if err != nil {
		return err
	}
	fmt.Printf("title=%s\n", title.GetTitle())
	fmt.Printf("tax_number=%s valid=%t\n", title.GetTaxNumber(), title.GetTaxNumberValid())
	return nil
}

// callContext carries the call's deadline, and the API key when there is one.
func callContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	if key := os.Getenv("OCRGATE_API_KEY"); key != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
	}
	return ctx, cancel
}

// describe names the status code and, from the ErrorInfo detail, the reason to branch on and the
// vendor's own error code.
func describe(err error) string {
	st := status.Convert(err)
	reason, errcode := "", ""
	for _, detail := range st.Details() {
		if info, ok := detail.(*errdetails.ErrorInfo); ok {
			reason, errcode = info.GetReason(), info.GetMetadata()["errcode"]
		}
	}
	return fmt.Sprintf("error code=%s reason=%s errcode=%s", code.Code(st.Code()), reason, errcode)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
