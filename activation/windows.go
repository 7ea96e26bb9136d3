//go:build windows

package activation

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"unicode/utf16"

	ole "github.com/go-ole/go-ole"
	"github.com/go-ole/go-ole/oleutil"
	"golang.org/x/sys/windows"

	"keystation"
)

const (
	hrSFalse          = 0x00000001 // COM already initialised on this thread
	hrRPCEChangedMode = 0x80010106 // thread already initialised as an STA
)

// windowsDriver activates this PC through WMI (root\cimv2,
// SoftwareLicensingService and SoftwareLicensingProduct), as slmgr does. The
// station must run elevated, or the service answers 0x80070005.
type windowsDriver struct {
	// sem lets one WMI call run at a time. A call cut short by its context
	// cannot be stopped; it keeps sem until it ends, so the next call waits
	// for it (or for its own context).
	sem chan struct{}

	mu       sync.Mutex
	lastFive string // partial key of the key this driver installed
}

// NewWindowsDriver returns the driver that activates this PC through WMI.
func NewWindowsDriver() (Driver, error) {
	return &windowsDriver{sem: make(chan struct{}, 1)}, nil
}

func (d *windowsDriver) Name() string    { return "windows" }
func (d *windowsDriver) Simulated() bool { return false }

func (d *windowsDriver) installed() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastFive
}

// FirmwareKey reads SoftwareLicensingService.OA3xOriginalProductKey.
func (d *windowsDriver) FirmwareKey(ctx context.Context) (FirmwareKey, error) {
	var raw string
	err := d.wmi(ctx, func(svc *ole.IDispatch) error {
		set, n, release, err := execQuery(svc, QueryFirmwareKey)
		if err != nil {
			return err
		}
		defer release()
		if n == 0 {
			return &Error{Message: "SoftwareLicensingService not found"}
		}
		obj, releaseObj, err := itemAt(set, 0)
		if err != nil {
			return err
		}
		defer releaseObj()
		v, err := prop(obj, "OA3xOriginalProductKey")
		raw = stringOf(v)
		return err
	})
	if err != nil {
		return FirmwareKey{}, err
	}
	return ParseFirmwareKey(raw), nil
}

// Install calls SoftwareLicensingService.InstallProductKey, then
// RefreshLicenseStatus.
func (d *windowsDriver) Install(ctx context.Context, key keystation.ProductKey) error {
	err := d.wmi(ctx, func(svc *ole.IDispatch) error {
		obj, release, err := service(svc)
		if err != nil {
			return err
		}
		defer release()
		if err := call(obj, "InstallProductKey", key.Plain()); err != nil {
			return err
		}
		d.mu.Lock()
		d.lastFive = key.LastFive()
		d.mu.Unlock()
		return call(obj, "RefreshLicenseStatus")
	})
	return scrubKey(err, key)
}

// Activate calls SoftwareLicensingProduct.Activate on the Windows product
// holding the installed key, then refreshes the license status.
func (d *windowsDriver) Activate(ctx context.Context) error {
	lastFive := d.installed()
	return d.wmi(ctx, func(svc *ole.IDispatch) error {
		set, ps, release, err := products(svc)
		if err != nil {
			return err
		}
		defer release()
		i, err := pickProduct(ps, lastFive)
		if err != nil {
			return err
		}
		obj, releaseObj, err := itemAt(set, i)
		if err != nil {
			return err
		}
		defer releaseObj()
		if err := call(obj, "Activate"); err != nil {
			return err
		}
		// Best effort: LicenseStatus is read afresh by Status anyway.
		if sobj, releaseSvc, err := service(svc); err == nil {
			_ = call(sobj, "RefreshLicenseStatus")
			releaseSvc()
		}
		return nil
	})
}

// Status reads SoftwareLicensingProduct.LicenseStatus of the Windows
// product; a PC with no Windows key installed is Unlicensed.
func (d *windowsDriver) Status(ctx context.Context) (LicenseStatus, error) {
	lastFive := d.installed()
	var st LicenseStatus
	err := d.wmi(ctx, func(svc *ole.IDispatch) error {
		_, ps, release, err := products(svc)
		if err != nil {
			return err
		}
		defer release()
		if len(ps) == 0 {
			st = StatusUnlicensed
			return nil
		}
		i, err := pickProduct(ps, lastFive)
		if err != nil {
			return err
		}
		st = ps[i].LicenseStatus
		return nil
	})
	return st, err
}

// wmi runs fn against root\cimv2 on a goroutine of its own (COM needs a
// locked OS thread) and returns when fn does or ctx ends.
func (d *windowsDriver) wmi(ctx context.Context, fn func(svc *ole.IDispatch) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	done := make(chan error, 1)
	go func() {
		defer func() { <-d.sem }()
		done <- withServices(fn)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		select {
		case err := <-done:
			return err
		default:
			return ctx.Err()
		}
	}
}

func withServices(fn func(svc *ole.IDispatch) error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	if err := ole.CoInitializeEx(0, ole.COINIT_MULTITHREADED); err != nil {
		var oe *ole.OleError
		if !errors.As(err, &oe) {
			return wmiError(err)
		}
		switch uint32(oe.Code()) {
		case hrSFalse:
			defer ole.CoUninitialize()
		case hrRPCEChangedMode:
			// The thread is already an STA: use it as it is.
		default:
			return wmiError(err)
		}
	} else {
		defer ole.CoUninitialize()
	}

	unknown, err := oleutil.CreateObject("WbemScripting.SWbemLocator")
	if err != nil {
		return wmiError(err)
	}
	if unknown == nil {
		return &Error{Message: "WbemScripting.SWbemLocator could not be created"}
	}
	defer unknown.Release()
	locator, err := unknown.QueryInterface(ole.IID_IDispatch)
	if err != nil {
		return wmiError(err)
	}
	defer locator.Release()
	// No arguments: the local computer, root\cimv2.
	svcRaw, err := oleutil.CallMethod(locator, "ConnectServer")
	if err != nil {
		return wmiError(err)
	}
	defer svcRaw.Clear()
	svc := svcRaw.ToIDispatch()
	if svc == nil {
		return &Error{Message: "SWbemLocator.ConnectServer returned no SWbemServices"}
	}
	return fn(svc)
}

// execQuery runs q and returns the SWbemObjectSet and its Count.
func execQuery(svc *ole.IDispatch, q string) (*ole.IDispatch, int, func(), error) {
	raw, err := oleutil.CallMethod(svc, "ExecQuery", q)
	if err != nil {
		return nil, 0, nil, wmiError(err)
	}
	set := raw.ToIDispatch()
	if set == nil {
		_ = raw.Clear()
		return nil, 0, nil, &Error{Message: "SWbemServices.ExecQuery returned no object set"}
	}
	cnt, err := oleutil.GetProperty(set, "Count")
	if err != nil {
		_ = raw.Clear()
		return nil, 0, nil, wmiError(err)
	}
	n, _ := uint32Of(cnt.Value())
	_ = cnt.Clear()
	return set, int(n), func() { _ = raw.Clear() }, nil
}

// itemAt returns the i-th SWbemObject of set.
func itemAt(set *ole.IDispatch, i int) (*ole.IDispatch, func(), error) {
	raw, err := oleutil.CallMethod(set, "ItemIndex", i)
	if err != nil {
		return nil, nil, wmiError(err)
	}
	obj := raw.ToIDispatch()
	if obj == nil {
		_ = raw.Clear()
		return nil, nil, &Error{Message: "SWbemObjectSet.ItemIndex returned no object"}
	}
	return obj, func() { _ = raw.Clear() }, nil
}

// service returns the SoftwareLicensingService instance.
func service(svc *ole.IDispatch) (*ole.IDispatch, func(), error) {
	set, n, release, err := execQuery(svc, QueryService)
	if err != nil {
		return nil, nil, err
	}
	if n == 0 {
		release()
		return nil, nil, &Error{Message: "SoftwareLicensingService not found"}
	}
	obj, releaseObj, err := itemAt(set, 0)
	if err != nil {
		release()
		return nil, nil, err
	}
	return obj, func() { releaseObj(); release() }, nil
}

// products returns the Windows products that have a key, in the order of
// set.
func products(svc *ole.IDispatch) (*ole.IDispatch, []product, func(), error) {
	set, n, release, err := execQuery(svc, QueryProducts)
	if err != nil {
		return nil, nil, nil, err
	}
	ps := make([]product, 0, n)
	for i := 0; i < n; i++ {
		p, err := readProduct(set, i)
		if err != nil {
			release()
			return nil, nil, nil, err
		}
		ps = append(ps, p)
	}
	return set, ps, release, nil
}

func readProduct(set *ole.IDispatch, i int) (product, error) {
	obj, release, err := itemAt(set, i)
	if err != nil {
		return product{}, err
	}
	defer release()
	var p product
	for _, f := range []struct {
		name string
		set  func(v any)
	}{
		{"ID", func(v any) { p.ID = stringOf(v) }},
		{"Name", func(v any) { p.Name = stringOf(v) }},
		{"PartialProductKey", func(v any) { p.PartialProductKey = stringOf(v) }},
		{"LicenseStatus", func(v any) { n, _ := uint32Of(v); p.LicenseStatus = LicenseStatus(n) }},
	} {
		v, err := prop(obj, f.name)
		if err != nil {
			return product{}, err
		}
		f.set(v)
	}
	return p, nil
}

// prop reads a property's value (nil for NULL).
func prop(obj *ole.IDispatch, name string) (any, error) {
	v, err := oleutil.GetProperty(obj, name)
	if err != nil {
		return nil, wmiError(err)
	}
	defer func() { _ = v.Clear() }()
	return v.Value(), nil
}

// call calls a WMI method. A failure raised as an exception carries the
// HRESULT in EXCEPINFO; a non-zero ReturnValue is an HRESULT too.
func call(obj *ole.IDispatch, method string, args ...any) error {
	res, err := oleutil.CallMethod(obj, method, args...)
	if err != nil {
		return wmiError(err)
	}
	defer func() { _ = res.Clear() }()
	if rv, ok := uint32Of(res.Value()); ok && rv != 0 {
		return &Error{HRESULT: rv, Message: systemMessage(rv)}
	}
	return nil
}

// wmiError maps a go-ole error to an *Error; when the service gave no
// message, Windows' own text for the code is used.
func wmiError(err error) error {
	err = FromOLEError(err)
	var e *Error
	if errors.As(err, &e) && e.Message == "" && e.HRESULT != 0 {
		e.Message = systemMessage(e.HRESULT)
	}
	return err
}

// slc is slc.dll (loaded as data), whose message table has the texts of the
// Software Licensing HRESULTs (0xC004xxxx); 0 when it cannot be loaded.
var slc = sync.OnceValue(func() windows.Handle {
	h, err := windows.LoadLibraryEx("slc.dll", 0, windows.LOAD_LIBRARY_AS_DATAFILE|windows.LOAD_LIBRARY_SEARCH_SYSTEM32)
	if err != nil {
		return 0
	}
	return h
})

// systemMessage is Windows' text for hr, from slc.dll or the system; "" if
// there is none.
func systemMessage(hr uint32) string {
	flags := uint32(windows.FORMAT_MESSAGE_FROM_SYSTEM | windows.FORMAT_MESSAGE_IGNORE_INSERTS)
	var src uintptr
	if h := slc(); h != 0 {
		flags |= windows.FORMAT_MESSAGE_FROM_HMODULE
		src = uintptr(h)
	}
	buf := make([]uint16, 2048)
	n, err := windows.FormatMessage(flags, src, hr, 0, buf, nil)
	if err != nil || n == 0 {
		return ""
	}
	return strings.TrimSpace(string(utf16.Decode(buf[:n])))
}
