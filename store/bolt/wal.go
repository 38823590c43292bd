package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// The write-ahead log (format 3). A group commit is one write of its
// records to the current log file and one fdatasync; the bolt file is
// brought up to date by the checkpointer in the background, in fully
// synced transactions, so a commit costs one sync where a bbolt commit
// costs two (data pages, then the meta page). Two log files alternate:
// a checkpoint switches appends to the other (emptied) file, writes the
// first file's records to bolt and, once that transaction is on disk,
// marks that file empty: the next switch to it rewrites it from its
// start, not truncated, so a sync within its size journals no metadata
// (what it held past the new records is in the bolt file: Seqs at or
// below its sequence, skipped, or a record cut by the new ones, which
// ends the file). At Close both files are truncated. At open, the records past bolt's sequence in either file are
// written to bolt (once: bolt's sequence then covers them) and both files
// truncated. A record that does not check out (cut short by a crash, or
// its checksum wrong) ends its file: it was never acknowledged, as an
// acknowledgement waits for the sync of every byte before it.
//
// A record:
//
//	length  uint32, big-endian: of the encoded update
//	crc     uint32, big-endian: CRC-32C of seq and the encoded update
//	seq     uint64, big-endian
//	update  internal/updatecodec encoding, as bolt stores it

const walHeader = 16

// maxWALRecord bounds a record's length at recovery, so a corrupted
// length field cannot make recovery allocate gigabytes. Encoded updates
// are bounded far below by the hub's publish limits.
const maxWALRecord = 64 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// walPaths returns the two log files beside the bolt file at path.
func walPaths(path string) [2]string { return [2]string{path + ".wal0", path + ".wal1"} }

// appendWALRecord appends a record header for seq and an encoded update
// of length n to b; the caller appends the update and then calls
// sealWALRecord.
func appendWALHeader(b []byte, seq uint64) []byte {
	b = append(b, make([]byte, 8)...)
	return binary.BigEndian.AppendUint64(b, seq)
}

// sealWALRecord fills in the length and checksum of the record that
// starts at b[start:].
func sealWALRecord(b []byte, start int) {
	rec := b[start:]
	binary.BigEndian.PutUint32(rec[0:4], uint32(len(rec)-walHeader))
	binary.BigEndian.PutUint32(rec[4:8], crc32.Checksum(rec[8:], castagnoli))
}

// readWAL calls fn for every intact record of the log file f, in file
// order, and stops at the first that is not (a torn tail).
func readWAL(f *os.File, fn func(seq uint64, val []byte)) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	for len(data) >= walHeader {
		n := binary.BigEndian.Uint32(data[0:4])
		if n > maxWALRecord || int(n) > len(data)-walHeader {
			return nil
		}
		rec := data[8 : walHeader+int(n)]
		if crc32.Checksum(rec, castagnoli) != binary.BigEndian.Uint32(data[4:8]) {
			return nil
		}
		fn(binary.BigEndian.Uint64(rec[:8]), rec[8:])
		data = data[walHeader+int(n):]
	}
	return nil
}

// openWAL opens (creating) the two log files beside path; a created file's
// directory entry is synced, so the log survives power loss.
func openWAL(path string) ([2]*os.File, error) {
	var fs [2]*os.File
	created := false
	for i, p := range walPaths(path) {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			created = true
		}
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600) // written at offsets (Store.walOff)
		if err != nil {
			closeWAL(fs)
			return fs, fmt.Errorf("bolt: log: %w", err)
		}
		fs[i] = f
	}
	if created {
		if err := syncDir(filepath.Dir(path)); err != nil {
			closeWAL(fs)
			return fs, fmt.Errorf("bolt: log: %w", err)
		}
	}
	return fs, nil
}

func closeWAL(fs [2]*os.File) error {
	var errs []error
	for _, f := range fs {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	return errors.Join(errs...)
}

// truncateWAL empties a log file (at open, after recovery, and at Close).
// It is not synced: should a crash undo the truncation, what the file
// held is in the bolt file (recovery skips records at or below its
// sequence, and a stale record after the new ones breaks the Seq chain,
// ending it).
func truncateWAL(f *os.File) error { return f.Truncate(0) }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
