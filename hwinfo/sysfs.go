package hwinfo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"keystation"
)

// LinuxReader reads the hardware of a Linux PC from sysfs and procfs under
// Root. It is plain Go, so tests on any OS can point it at a fixture tree.
// Memory is MemTotal as one module (per-module details need root and
// dmidecode); disks exclude virtual, optical and USB devices; graphics and
// the OS build are not read.
type LinuxReader struct {
	// Root is the directory holding sys/, proc/ and etc/: "/" on a live
	// system (also when empty).
	Root string
	// ReadFile reads a file given its full path (Root joined with the system
	// path); nil means os.ReadFile. Tests wrap it to make files root-only.
	ReadFile func(name string) ([]byte, error)
}

// Read reads the hardware under r.Root. Unreadable fields are left empty and
// explained in Warnings; the error is only for a cancelled context or a
// missing Root.
func (r LinuxReader) Read(ctx context.Context) (keystation.Hardware, error) {
	if err := ctx.Err(); err != nil {
		return keystation.Hardware{}, err
	}
	if _, err := os.Stat(r.root()); err != nil {
		return keystation.Hardware{}, fmt.Errorf("hwinfo: %w", err)
	}
	var h keystation.Hardware
	var w warnings
	r.readDMI(&h, &w)
	r.readCPU(&h, &w)
	r.readMemory(&h, &w)
	r.readDisks(&h, &w)
	r.readMACs(&h, &w)
	r.readOS(&h, &w)
	h.Warnings = w
	return h, nil
}

const dmiDir = "/sys/class/dmi/id/"

func (r LinuxReader) readDMI(h *keystation.Hardware, w *warnings) {
	one := func(dst *string, field, file, hint string) {
		v, why, perm := r.dmi(file)
		if why != "" {
			w.add(field, "%s", withHint(why, perm, hint))
		}
		*dst = v
	}
	one(&h.SerialNumber, fieldSerial, "product_serial", "pass "+flagSN)
	one(&h.Model, fieldModel, "product_name", "pass "+flagModel)
	one(&h.UUID, fieldUUID, "product_uuid", "")
	h.UUID = strings.ToUpper(h.UUID)
	one(&h.Manufacturer, fieldManufacturer, "sys_vendor", "")

	two := func(dst *string, field, file1, file2 string) {
		v1, why1, perm1 := r.dmi(file1)
		v2, why2, perm2 := r.dmi(file2)
		if *dst = join(v1, v2); *dst == "" {
			w.add(field, "%s and %s", why1, withHint(why2, perm1 || perm2, ""))
		}
	}
	two(&h.Baseboard, fieldBaseboard, "board_vendor", "board_name")
	two(&h.BIOS, fieldBIOS, "bios_vendor", "bios_version")
}

// dmi reads one DMI field. A placeholder or unreadable value gives "" and
// the reason; perm tells that only root may read the file.
func (r LinuxReader) dmi(file string) (value, why string, perm bool) {
	p := dmiDir + file
	v, err := r.read(p)
	switch {
	case err != nil:
		return "", r.why(p, err), errors.Is(err, fs.ErrPermission)
	case v == "":
		return "", p + " is empty", false
	case IsPlaceholder(v):
		return "", fmt.Sprintf("%s holds the placeholder %q", p, v), false
	}
	return v, "", false
}

func withHint(why string, perm bool, hint string) string {
	if perm {
		root := "run the station as root"
		if hint != "" {
			root += " or " + hint
		}
		return why + "; " + root
	}
	if hint != "" {
		return why + "; " + hint
	}
	return why
}

func (r LinuxReader) readCPU(h *keystation.Hardware, w *warnings) {
	const p = "/proc/cpuinfo"
	b, err := r.readBytes(p)
	if err != nil {
		w.add(fieldCPU, "%s", r.why(p, err))
		return
	}
	if v, ok := field(b, "model name", ':'); ok && v != "" {
		h.CPU = clean(v)
		return
	}
	w.add(fieldCPU, "%s has no \"model name\" line", p)
}

func (r LinuxReader) readMemory(h *keystation.Hardware, w *warnings) {
	const p = "/proc/meminfo"
	b, err := r.readBytes(p)
	if err != nil {
		w.add(fieldMemory, "%s", r.why(p, err))
		return
	}
	v, _ := field(b, "MemTotal", ':')
	kb, err := strconv.ParseUint(strings.TrimSuffix(v, " kB"), 10, 64)
	if err != nil || kb == 0 {
		w.add(fieldMemory, "%s has no valid MemTotal line", p)
		return
	}
	h.Memory = []keystation.MemoryModule{{ID: 0, Size: kb * 1024}}
	w.add(fieldMemory, "per-module details (slots, speed, manufacturer) need root and dmidecode; reporting MemTotal from %s as one module", p)
}

// skipDisk lists the /sys/block name prefixes that are not installed disks.
var skipDisk = []string{"loop", "ram", "zram", "dm-", "sr", "md", "fd", "nbd"}

func (r LinuxReader) readDisks(h *keystation.Hardware, w *warnings) {
	const dir = "/sys/block"
	entries, err := os.ReadDir(r.path(dir))
	if err != nil {
		w.add(fieldDisks, "%s", r.why(dir, err))
		return
	}
	for _, e := range entries {
		name := e.Name()
		if slices.ContainsFunc(skipDisk, func(p string) bool { return strings.HasPrefix(name, p) }) ||
			strings.HasPrefix(name, "mmcblk") && (strings.Contains(name, "boot") || strings.Contains(name, "rpmb")) {
			continue
		}
		base := dir + "/" + name
		v, err := r.read(base + "/size")
		if err != nil {
			w.add(fieldDisks, "%s", r.why(base+"/size", err))
			continue
		}
		sectors, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			w.add(fieldDisks, "%s/size holds %q, not a number of sectors", base, v)
			continue
		}
		iface := r.diskInterface(name, base)
		if sectors == 0 || iface == "USB" { // no media, or not the PC's own disk
			continue
		}
		model, _ := r.read(base + "/device/model")
		serial, err := r.read(base + "/device/serial")
		if err != nil {
			serial, _ = r.read(base + "/serial")
		}
		h.Disks = append(h.Disks, keystation.Disk{
			ID:            len(h.Disks),
			Size:          sectors * 512,
			InterfaceType: iface,
			Model:         clean(model),
			Serial:        clean(serial),
		})
	}
	if len(h.Disks) == 0 {
		w.add(fieldDisks, "no installed disk in %s", dir)
	}
}

// diskInterface guesses a block device's bus from the sysfs path its
// /sys/block link points to: NVMe, SATA (libata), USB, else SCSI (which is
// also what Windows reports for virtio disks).
func (r LinuxReader) diskInterface(name, sys string) string {
	path, root := r.path(sys), r.root()
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
		if rr, err := filepath.EvalSymlinks(root); err == nil {
			root = rr
		}
	}
	// Only the part below Root tells the bus; Root itself may be anywhere.
	path = filepath.ToSlash(strings.TrimPrefix(path, root))
	switch {
	case strings.HasPrefix(name, "nvme") || strings.Contains(path, "/nvme/"):
		return "NVMe"
	case strings.Contains(path, "/usb"):
		return "USB"
	case strings.Contains(path, "/ata"):
		return "SATA"
	}
	return "SCSI"
}

func (r LinuxReader) readMACs(h *keystation.Hardware, w *warnings) {
	const dir = "/sys/class/net"
	entries, err := os.ReadDir(r.path(dir))
	if err != nil {
		w.add(fieldMACs, "%s", r.why(dir, err))
		return
	}
	for _, e := range entries {
		base := dir + "/" + e.Name()
		if e.Name() == "lo" {
			continue
		}
		if _, err := os.Lstat(r.path(base + "/device")); err != nil {
			continue // virtual: bridge, veth, tun, ...
		}
		v, err := r.read(base + "/address")
		if mac := normMAC(v); err == nil && mac != "" && !slices.Contains(h.MACs, mac) {
			h.MACs = append(h.MACs, mac)
		}
	}
	if len(h.MACs) == 0 {
		w.add(fieldMACs, "no physical network adapter with a MAC address in %s", dir)
	}
}

func (r LinuxReader) readOS(h *keystation.Hardware, w *warnings) {
	h.OS.Architecture = goArch(runtime.GOARCH)
	p := "/etc/os-release"
	b, err := r.readBytes(p)
	if errors.Is(err, fs.ErrNotExist) {
		p = "/usr/lib/os-release"
		b, err = r.readBytes(p)
	}
	if err != nil {
		w.add(fieldOS, "%s; pass %s", r.why(p, err), flagOS)
	} else {
		name, _ := field(b, "PRETTY_NAME", '=')
		if name == "" {
			name, _ = field(b, "NAME", '=')
		}
		version, _ := field(b, "VERSION_ID", '=')
		h.OS.Caption, h.OS.Version = unquote(name), unquote(version)
		if h.OS.Caption == "" {
			w.add(fieldOS, "%s has no PRETTY_NAME or NAME; pass %s", p, flagOS)
		}
	}
	const k = "/proc/sys/kernel/osrelease"
	if v, err := r.read(k); err != nil {
		w.add("kernel", "%s", r.why(k, err))
	} else {
		h.OS.Kernel = v
	}
}

// goArch maps a GOARCH to the names Windows uses (x64, x86, arm64).
func goArch(a string) string {
	switch a {
	case "amd64":
		return "x64"
	case "386":
		return "x86"
	}
	return a
}

func (r LinuxReader) root() string {
	if r.Root == "" {
		return "/"
	}
	return r.Root
}

// path turns a system path ("/sys/block") into a path under Root.
func (r LinuxReader) path(sys string) string {
	return filepath.Join(r.root(), filepath.FromSlash(sys))
}

func (r LinuxReader) readBytes(sys string) ([]byte, error) {
	read := r.ReadFile
	if read == nil {
		read = os.ReadFile
	}
	return read(r.path(sys))
}

// read returns the trimmed content of a sysfs or procfs file.
func (r LinuxReader) read(sys string) (string, error) {
	b, err := r.readBytes(sys)
	return strings.TrimSpace(string(b)), err
}

// why explains, naming the system path, why a file could not be read.
func (r LinuxReader) why(sys string, err error) string {
	switch {
	case errors.Is(err, fs.ErrPermission):
		return sys + " is readable only by root"
	case errors.Is(err, fs.ErrNotExist):
		return sys + " does not exist"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return "reading " + sys + ": " + err.Error()
}

// field returns the trimmed value of the first "key<sep>value" line in b.
func field(b []byte, key string, sep byte) (string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), string(sep))
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// unquote strips the shell quotes os-release values may carry.
func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		s = strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\$`, `$`, "\\`", "`").Replace(s[1 : len(s)-1])
	}
	return strings.TrimSpace(s)
}
