# hash_files.cmake - checks examples/hash_files.c against sha256sum.
#
# hash_files_vs_sha256sum: makes a directory of files (empty, one byte,
# 55/56/63/64/65 bytes around SHA-256's padding boundaries, text, a few
# megabytes of random data, a name with spaces, and 40 small ones so that
# the pool has work to share), hashes them with hash_files -j 4 and with
# sha256sum, and compares the sorted outputs.  Then a missing file must
# make hash_files exit 1 while it still prints the others.

find_program(GORT_SHA256SUM sha256sum)
if(NOT GORT_SHA256SUM)
  message(STATUS "sha256sum not found: hash_files_vs_sha256sum not added")
  return()
endif()

set(_hash_driver ${CMAKE_CURRENT_BINARY_DIR}/hash_files_test.sh)
file(WRITE ${_hash_driver} [=[
#!/bin/sh
# hash_files_test.sh HASH_FILES SHA256SUM
hasher=$1
sha=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/gort_hash.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
: >"$dir/empty"
printf a >"$dir/one"
for n in 55 56 63 64 65 1000
do
    head -c $n /dev/zero | tr '\0' 'x' >"$dir/pad$n"
done
printf 'hello, goroutines\n' >"$dir/with space.txt"
head -c 3000000 /dev/urandom >"$dir/random.bin"
i=0
while [ $i -lt 40 ]
do
    head -c $((i * 997)) /dev/urandom >"$dir/small$i"
    i=$((i + 1))
done
cd "$dir" || exit 1
set -- *
"$hasher" -j 4 "$@" | sort >"$dir/ours" || { echo "hash_files failed"; exit 1; }
"$sha" "$@" | sort >"$dir/theirs" || exit 1
if ! cmp -s "$dir/ours" "$dir/theirs"
then
    echo "hash_files and sha256sum differ:"
    diff "$dir/ours" "$dir/theirs"
    exit 1
fi
echo "$(wc -l <"$dir/ours") files: identical to sha256sum"
"$hasher" one no-such-file empty >"$dir/partial" 2>"$dir/partial.err"
rc=$?
if [ $rc -ne 1 ] || [ "$(wc -l <"$dir/partial")" -ne 2 ] || ! grep -q "no-such-file" "$dir/partial.err"
then
    echo "a missing file: exit $rc, output:"
    cat "$dir/partial" "$dir/partial.err"
    exit 1
fi
echo "a missing file: reported, exit 1, other files still hashed"
]=])

add_test(NAME hash_files_vs_sha256sum
  COMMAND sh ${_hash_driver} $<TARGET_FILE:hash_files> ${GORT_SHA256SUM})
set_tests_properties(hash_files_vs_sha256sum PROPERTIES LABELS example TIMEOUT 60)
