package apply

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/plexus-net/plexus/controllers/component"
)

// Kind is one kind of object a component may own, and how prune finds the ones it owns.
type Kind struct {
	// GVK is the object's group, version and kind; the client's scheme must know it and its List.
	GVK schema.GroupVersionKind
	// Namespaced kinds live in the component's Namespace only; the others are cluster-scoped.
	Namespaced bool
	// Names, when set, are the only names the component gives objects of this kind. Prune then gets
	// each by name instead of listing, because the operator's RBAC for such a kind is limited to
	// these names (a resourceNames rule cannot grant a plain list). Empty: prune lists by label.
	Names []string
}

// Component is a managed component as apply-and-prune sees it: its label, its field manager and
// every kind its render may produce.
type Component struct {
	// Name is the value of the component label on its objects.
	Name string
	// FieldOwner is the server-side apply field manager of its objects.
	FieldOwner string
	// Namespace holds its namespaced objects.
	Namespace string
	// Kinds lists every kind its render may produce; prune looks for nothing else.
	Kinds []Kind
}

// Check reports rendered objects that prune could not find again: a kind not in Kinds, a name not in
// the kind's Names, a namespace other than the component's, or missing component labels. It is pure,
// so a render's output can be checked in a unit test.
func (c Component) Check(objs []client.Object) error {
	var errs []error
	for _, o := range objs {
		gvk := o.GetObjectKind().GroupVersionKind()
		id := fmt.Sprintf("%s %s", gvk.Kind, client.ObjectKeyFromObject(o))
		k, ok := c.kind(gvk)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s: kind %s is not in component %s's kinds", id, gvk, c.Name))
		case k.Namespaced && o.GetNamespace() != c.Namespace:
			errs = append(errs, fmt.Errorf("%s: component %s keeps its objects in namespace %q", id, c.Name, c.Namespace))
		case !k.Namespaced && o.GetNamespace() != "":
			errs = append(errs, fmt.Errorf("%s: %s is cluster-scoped", id, gvk.Kind))
		case len(k.Names) > 0 && !slices.Contains(k.Names, o.GetName()):
			errs = append(errs, fmt.Errorf("%s: component %s may only name its %s objects %v", id, c.Name, gvk.Kind, k.Names))
		case !component.Owns(c.Name, o.GetLabels()):
			errs = append(errs, fmt.Errorf("%s: lacks the labels of component %s (%v)", id, c.Name, component.Selector(c.Name)))
		}
	}
	return kerrors.NewAggregate(errs)
}

func (c Component) kind(gvk schema.GroupVersionKind) (Kind, bool) {
	i := slices.IndexFunc(c.Kinds, func(k Kind) bool { return k.GVK == gvk })
	if i < 0 {
		return Kind{}, false
	}
	return c.Kinds[i], true
}

// Reconcile makes the cluster hold exactly what the component renders now: it server-side applies
// objs (typed, TypeMeta set; owned by owner when owner is not nil) in order, then deletes every object
// of the component's kinds that carries its labels and is not in objs. A disabled component is an
// empty objs: everything it owned is deleted. Errors of single objects are aggregated; the other
// objects are still applied and pruned. Preview runs the same steps as a dry run.
func Reconcile(ctx context.Context, c client.Client, comp Component, owner client.Object, objs []client.Object) error {
	_, err := run(ctx, c, comp, owner, objs, nil)
	return err
}

// run is Reconcile and Preview: one path, so a preview cannot disagree with what the operator then
// does. With dry (a preview) it writes nothing and reports each object's action; without, the report
// holds only the deletes it made.
func run(ctx context.Context, c client.Client, comp Component, owner client.Object, objs []client.Object, dry *dryRun) ([]ObjectChange, error) {
	if err := comp.Check(objs); err != nil {
		return nil, fmt.Errorf("render of component %s: %w", comp.Name, err)
	}
	var errs []error
	var report []ObjectChange
	keep := map[objectID]bool{}
	for _, o := range objs {
		keep[idOf(o.GetObjectKind().GroupVersionKind(), o)] = true
		if owner != nil {
			if err := controllerutil.SetControllerReference(owner, o, c.Scheme()); err != nil {
				errs = append(errs, fmt.Errorf("own %s: %w", o.GetName(), err))
				continue
			}
		}
		if dry != nil {
			change, err := previewObject(ctx, c, comp.FieldOwner, o, dry.ignore)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			report = append(report, change)
			continue
		}
		if err := Object(ctx, c, comp.FieldOwner, o); err != nil {
			errs = append(errs, err)
		}
	}
	for _, k := range comp.Kinds {
		deleted, err := prune(ctx, c, comp, k, keep, dry != nil)
		report = append(report, deleted...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return report, kerrors.NewAggregate(errs)
}

// objectID identifies an object across kinds.
type objectID struct {
	gk              schema.GroupKind
	namespace, name string
}

func idOf(gvk schema.GroupVersionKind, o client.Object) objectID {
	return objectID{gk: gvk.GroupKind(), namespace: o.GetNamespace(), name: o.GetName()}
}

// prune deletes the component's objects of kind k that keep does not hold (with dryRun it only
// reports them).
func prune(ctx context.Context, c client.Client, comp Component, k Kind, keep map[objectID]bool, dryRun bool) ([]ObjectChange, error) {
	owned, err := ownedObjects(ctx, c, comp, k)
	if err != nil {
		return nil, err
	}
	var errs []error
	var deleted []ObjectChange
	for _, o := range owned {
		if keep[idOf(k.GVK, o)] {
			continue
		}
		change := ObjectChange{Action: ActionDelete, Kind: k.GVK.Kind, Namespace: o.GetNamespace(), Name: o.GetName()}
		if !dryRun {
			if err := c.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("prune %s %s of component %s: %w", k.GVK.Kind, client.ObjectKeyFromObject(o), comp.Name, err))
				continue
			}
		}
		deleted = append(deleted, change)
	}
	return deleted, kerrors.NewAggregate(errs)
}

// ownedObjects finds the objects of kind k that carry the component's labels: by name when the kind
// is name-limited, else by a label-selected list.
func ownedObjects(ctx context.Context, c client.Client, comp Component, k Kind) ([]client.Object, error) {
	namespace := ""
	if k.Namespaced {
		namespace = comp.Namespace
	}
	if len(k.Names) > 0 {
		var out []client.Object
		for _, name := range k.Names {
			o, err := newObject(c, k.GVK)
			if err != nil {
				return nil, err
			}
			if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, o); err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return nil, fmt.Errorf("get %s %s of component %s: %w", k.GVK.Kind, name, comp.Name, err)
			}
			if component.Owns(comp.Name, o.GetLabels()) {
				out = append(out, o)
			}
		}
		return out, nil
	}
	list, err := newList(c, k.GVK)
	if err != nil {
		return nil, err
	}
	opts := []client.ListOption{component.Selector(comp.Name)}
	if namespace != "" {
		opts = append(opts, client.InNamespace(namespace))
	}
	if err := c.List(ctx, list, opts...); err != nil {
		return nil, fmt.Errorf("list %s of component %s: %w", k.GVK.Kind, comp.Name, err)
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, fmt.Errorf("read %s list: %w", k.GVK.Kind, err)
	}
	out := make([]client.Object, 0, len(items))
	for _, it := range items {
		if o, ok := it.(client.Object); ok {
			out = append(out, o)
		}
	}
	return out, nil
}

// newObject returns an empty typed object of gvk: typed, so that a cached client reads it from the
// informer it already runs for the kind.
func newObject(c client.Client, gvk schema.GroupVersionKind) (client.Object, error) {
	ro, err := c.Scheme().New(gvk)
	if err != nil {
		return nil, fmt.Errorf("new %s: %w", gvk, err)
	}
	o, ok := ro.(client.Object)
	if !ok {
		return nil, fmt.Errorf("%s is not an object", gvk)
	}
	return o, nil
}

func newList(c client.Client, gvk schema.GroupVersionKind) (client.ObjectList, error) {
	lgvk := gvk.GroupVersion().WithKind(gvk.Kind + "List")
	ro, err := c.Scheme().New(lgvk)
	if err != nil {
		return nil, fmt.Errorf("new %s: %w", lgvk, err)
	}
	l, ok := ro.(client.ObjectList)
	if !ok {
		return nil, fmt.Errorf("%s is not a list", lgvk)
	}
	return l, nil
}
