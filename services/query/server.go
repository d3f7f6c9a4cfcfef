package query

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	billingv1 "github.com/ledger-billing/ledger/proto/billing/v1"
)

// NewServer returns a gRPC server, ready to Serve, with svc as
// billing.v1.BillingService, server reflection (so grpcurl and ledgerctl
// need no .proto files) and the standard health service.
//
// Health reports NOT_SERVING, for the server ("") and for
// billing.v1.BillingService, until the runner has caught up with the live
// end of the log, and SERVING from then on: a balancer routes no call to a
// replica that would answer from part of the history. Once ctx ends it
// reports NOT_SERVING again, so that balancers drain the server before the
// caller's GracefulStop; ctx also bounds the goroutine that watches the
// runner. opts go to grpc.NewServer.
//
// The server encodes the responses of issued invoices and frozen usage
// months from the service's cache (frozenCodec): interceptors in opts may
// read those responses but must not modify their messages, which are
// shared by every call that asks for the same document.
func NewServer(ctx context.Context, svc *Service, opts ...grpc.ServerOption) *grpc.Server {
	// The frozen codec comes first, so that a caller's own codec wins; the
	// answers stay the same without it, only slower to encode.
	opts = append([]grpc.ServerOption{grpc.ForceServerCodecV2(newFrozenCodec(svc.frozen))}, opts...)
	srv := grpc.NewServer(opts...)
	billingv1.RegisterBillingServiceServer(srv, svc)
	reflection.Register(srv)

	hs := health.NewServer()
	services := []string{"", billingv1.BillingService_ServiceDesc.ServiceName}
	for _, name := range services {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	healthpb.RegisterHealthServer(srv, hs)

	go func() {
		if err := svc.runner.WaitFor(ctx, 0); err == nil {
			for _, name := range services {
				hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
			}
			pos, _ := svc.runner.Progress()
			svc.logger.Info("query: serving", "position", pos)
		}
		<-ctx.Done()
		// Shutdown sets every service NOT_SERVING and keeps it so.
		hs.Shutdown()
	}()
	return srv
}
