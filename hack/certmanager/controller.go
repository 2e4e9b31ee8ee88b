package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
	"github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	crca "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	crselfsigned "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	"github.com/cert-manager/cert-manager/pkg/controller/issuers"
	// The issuer kinds an Issuer may be (they register themselves with the issuers controller).
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

// The controllers a Certificate from a selfSigned or ca Issuer goes through, each registered
// with controllerpkg.Known() by its package's init().
var controllers = []string{
	issuers.ControllerName,         // an Issuer's Ready condition
	trigger.ControllerName,         // a Certificate that needs issuing
	keymanager.ControllerName,      // its next private key
	requestmanager.ControllerName,  // its CertificateRequest
	approver.ControllerName,        // approves requests for cert-manager.io issuers
	crselfsigned.CRControllerName,  // signs for a selfSigned Issuer
	crca.CRControllerName,          // signs for a ca Issuer
	issuing.ControllerName,         // stores the signed certificate in the Secret
	readiness.ControllerName,       // the Certificate's Ready condition
	revisionmanager.ControllerName, // prunes old CertificateRequests
}

// Workers per controller, as cert-manager's default --concurrent-workers.
const workers = 5

func runController(ctx context.Context, kubeconfig string) error {
	// A controller that fails stops the others: the process exits with its error.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	factory, err := controllerpkg.NewContextFactory(ctx, controllerpkg.ContextOptions{
		Kubeconfig: kubeconfig,
		// cert-manager's defaults (internal/apis/config/controller/v1alpha1/defaults.go).
		KubernetesAPIQPS:   20,
		KubernetesAPIBurst: 50,
		IssuerOptions:      controllerpkg.IssuerOptions{ClusterResourceNamespace: "kube-system"},
		CertificateOptions: controllerpkg.CertificateOptions{
			CopiedAnnotationPrefixes:                 []string{"*", "-kubectl.kubernetes.io/", "-fluxcd.io/", "-argocd.argoproj.io/"},
			CertificateRequestMinimumBackoffDuration: time.Hour,
			CertificateRequestMaximumBackoffDuration: 32 * time.Hour,
		},
	})
	if err != nil {
		return err
	}
	known := controllerpkg.Known()
	var loops sync.WaitGroup
	errs := make(chan error, len(controllers))
	for _, name := range controllers {
		construct, ok := known[name]
		if !ok {
			return fmt.Errorf("controller %s is not registered", name)
		}
		loop, err := construct(factory)
		if err != nil {
			return fmt.Errorf("controller %s: %w", name, err)
		}
		loops.Go(func() {
			if err := loop.Run(workers, ctx); err != nil {
				errs <- fmt.Errorf("controller %s: %w", name, err)
				cancel()
			}
		})
	}

	// The informer factories are shared by every Context the factory builds (Build is the only
	// way to reach them): start them once the controllers have asked for their informers.
	shared, err := factory.Build()
	if err != nil {
		return err
	}
	shared.KubeSharedInformerFactory.Start(ctx.Done())
	shared.SharedInformerFactory.Start(ctx.Done())
	shared.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())
	shared.KubeSharedInformerFactory.WaitForCacheSync(ctx.Done())
	shared.SharedInformerFactory.WaitForCacheSync(ctx.Done())
	if ctx.Err() == nil {
		ready("controller")
	}

	loops.Wait()
	shared.KubeSharedInformerFactory.Shutdown()
	shared.SharedInformerFactory.Shutdown()
	close(errs)
	return <-errs // nil when every loop stopped on a signal
}
