//go:build windows

package hwinfo

import (
	"context"
	"errors"
	"fmt"

	"github.com/yusufpapurcu/wmi"
	"golang.org/x/sys/windows/registry"

	"keystation"
)

// Read reads the hardware of this PC through WMI and the registry. A class
// that cannot be queried becomes a warning; Read fails only when no WMI
// query succeeds or ctx ends first (a hung WMI service is left behind).
func Read(ctx context.Context) (keystation.Hardware, error) {
	type result struct {
		rows WMIRows
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		rows, err := queryWMI(ctx)
		ch <- result{rows, err}
	}()
	select {
	case <-ctx.Done():
		return keystation.Hardware{}, ctx.Err()
	case r := <-ch:
		if r.err != nil {
			return keystation.Hardware{}, r.err
		}
		return FromWMI(r.rows), nil
	}
}

// queryWMI runs the queries WMIRows holds, one class at a time.
func queryWMI(ctx context.Context) (WMIRows, error) {
	// Null properties read as zero values; properties a Windows build lacks
	// are left zero instead of failing the row.
	c := &wmi.Client{NonePtrZero: true, AllowMissingFields: true}
	rows := WMIRows{Errors: map[string]string{}}
	var errs []error
	query := func(class, where string, dst any) {
		if ctx.Err() != nil {
			return
		}
		err := c.Query(wmi.CreateQuery(dst, where, class), dst)
		var mismatch *wmi.ErrFieldMismatch
		if err == nil || errors.As(err, &mismatch) {
			return // a mismatched field stays zero; the rows are loaded
		}
		rows.Errors[class] = err.Error()
		errs = append(errs, fmt.Errorf("%s: %w", class, err))
	}
	queries := []struct {
		class, where string
		dst          any
	}{
		{classProduct, "", &rows.ComputerSystemProduct},
		{classBIOS, "", &rows.BIOS},
		{classBaseBoard, "", &rows.BaseBoard},
		{classProcessor, "", &rows.Processor},
		{classMemory, "", &rows.PhysicalMemory},
		{classDisk, "", &rows.DiskDrive},
		{classVideo, "", &rows.VideoController},
		{classOS, "", &rows.OperatingSystem},
		{classNetwork, "WHERE PhysicalAdapter = TRUE AND MACAddress IS NOT NULL", &rows.NetworkAdapter},
	}
	for _, q := range queries {
		query(q.class, q.where, q.dst)
	}
	if err := ctx.Err(); err != nil {
		return rows, err
	}
	if len(errs) == len(queries) {
		return rows, fmt.Errorf("hwinfo: WMI unavailable: %w", errors.Join(errs...))
	}
	cv, err := readCurrentVersion()
	if err != nil {
		rows.Errors[registryKey] = err.Error()
	}
	rows.CurrentVersion = cv
	return rows, nil
}

// readCurrentVersion reads EditionID, DisplayVersion and UBR. A missing
// DisplayVersion (before Windows 10 20H2) or UBR is not an error.
func readCurrentVersion() (CurrentVersion, error) {
	var cv CurrentVersion
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, `SOFTWARE\Microsoft\Windows NT\CurrentVersion`,
		registry.QUERY_VALUE|registry.WOW64_64KEY)
	if err != nil {
		return cv, err
	}
	defer k.Close()
	cv.DisplayVersion, _, _ = k.GetStringValue("DisplayVersion")
	if ubr, _, err := k.GetIntegerValue("UBR"); err == nil {
		cv.UBR = uint32(ubr)
	}
	if cv.EditionID, _, err = k.GetStringValue("EditionID"); err != nil {
		return cv, fmt.Errorf("EditionID: %w", err)
	}
	return cv, nil
}
