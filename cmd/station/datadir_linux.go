package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// onRemovableMedia reports whether path lies on a removable block device:
// the mount holding it (/proc/self/mountinfo) is a device whose disk has
// /sys/block/<disk>/removable = 1, or hangs off a USB bus.
func onRemovableMedia(path string) bool {
	dev := mountSource("/proc/self/mountinfo", path)
	if !strings.HasPrefix(dev, "/dev/") {
		return false
	}
	if r, err := filepath.EvalSymlinks(dev); err == nil {
		dev = r
	}
	return removableBlock("/sys", filepath.Base(dev))
}

// mountSource returns the device mounted at the longest mount point that
// holds path, from a mountinfo file.
func mountSource(mountinfo, path string) string {
	f, err := os.Open(mountinfo)
	if err != nil {
		return ""
	}
	defer f.Close()
	best, src := -1, ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(tail) < 2 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp != "/" && path != mp && !strings.HasPrefix(path, mp+"/") {
			continue
		}
		if len(mp) > best {
			best, src = len(mp), tail[1]
		}
	}
	return src
}

// unescapeMount undoes the octal escapes of mountinfo (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			v := 0
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + int(c-'0')
			}
			if ok {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removableBlock reports whether the block device name (a disk or a
// partition) is removable, reading sysfs under sys.
func removableBlock(sys, name string) bool {
	link, err := filepath.EvalSymlinks(filepath.Join(sys, "class", "block", name))
	if err != nil {
		return false
	}
	disk := link
	if _, err := os.Stat(filepath.Join(link, "partition")); err == nil {
		disk = filepath.Dir(link)
	}
	if b, err := os.ReadFile(filepath.Join(sys, "block", filepath.Base(disk), "removable")); err == nil && strings.TrimSpace(string(b)) == "1" {
		return true
	}
	// USB sticks and card readers often say removable=0; their device path
	// goes through a USB bus.
	return strings.Contains(link, "/usb")
}
