# WAL volume (storage nodes): the instance's one non-root EBS disk, mounted on /var/lib/fjord.
# A volume that already holds a file system (one handed over from a failed node) is mounted as is;
# a new one is formatted first.
ROOT_DISK=$(lsblk -no PKNAME "$(findmnt -no SOURCE /)")
DEV=""
for attempt in $(seq 1 90); do
  for d in $(lsblk -dno NAME,TYPE | awk '$2 == "disk" { print $1 }'); do
    if [ "$d" != "$ROOT_DISK" ]; then DEV="/dev/$d"; break; fi
  done
  [ -n "$DEV" ] && break
  sleep 2
done
if [ -z "$DEV" ]; then echo "no WAL volume attached"; exit 1; fi
if ! blkid "$DEV" >/dev/null 2>&1; then
  mkfs.xfs -q -L fjord-wal "$DEV"
fi
FS_UUID=$(blkid -s UUID -o value "$DEV")
grep -q "$FS_UUID" /etc/fstab || echo "UUID=$FS_UUID /var/lib/fjord xfs defaults,noatime,nofail 0 2" >> /etc/fstab
mountpoint -q /var/lib/fjord || mount /var/lib/fjord
chown fjord:fjord /var/lib/fjord
chmod 0750 /var/lib/fjord
# NVMe EBS disks carry the volume id as serial ("vol0abc..." for vol-0abc...).
lsblk -dno SERIAL "$DEV" | sed 's/^vol\([^-]\)/vol-\1/' > /etc/fjord/wal-volume-id
echo "WAL volume $(cat /etc/fjord/wal-volume-id) on $DEV"

# Volumes handed over by the controller (a failed node's WAL, attached to this node) are mounted
# by udev at /var/lib/fjord/adopted/<volume id>, where fjord (unprivileged) replays them. When the
# replayed data is in S3, fjord creates the file /var/lib/fjord/adopted/<volume id>.release; a
# systemd path unit then runs `fjord-volume release-requested` as root, which unmounts, detaches and
# deletes the volume (fjord itself stays unprivileged).
cat > /usr/local/bin/fjord-volume <<'HELPER'
#!/bin/bash
# fjord-volume mount <kernel name> | release <volume id> | release-requested
set -euo pipefail
IMDS=http://169.254.169.254/latest
imds_token() { curl -sf -X PUT "$IMDS/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 300"; }
REGION=$(curl -sf -H "X-aws-ec2-metadata-token: $(imds_token)" "$IMDS/meta-data/placement/region")
OWN=$(cat /etc/fjord/wal-volume-id 2>/dev/null || true)
case "${1:-}" in
  mount)
    DEV="/dev/$2"
    VOL=$(lsblk -dno SERIAL "$DEV" | sed 's/^vol\([^-]\)/vol-\1/')
    ROOT_DISK=$(lsblk -no PKNAME "$(findmnt -no SOURCE /)")
    if [ "$2" = "$ROOT_DISK" ] || [ -z "$VOL" ] || [ "$VOL" = "$OWN" ]; then exit 0; fi
    blkid "$DEV" >/dev/null 2>&1 || { echo "$VOL has no file system: not a WAL volume"; exit 0; }
    install -d -o fjord -g fjord -m 0750 "/var/lib/fjord/adopted/$VOL"
    mountpoint -q "/var/lib/fjord/adopted/$VOL" || mount -o noatime "$DEV" "/var/lib/fjord/adopted/$VOL"
    echo "adopted WAL volume $VOL mounted at /var/lib/fjord/adopted/$VOL"
    ;;
  release)
    VOL="$2"
    [[ "$VOL" =~ ^vol-[0-9a-f]+$ ]] || { echo "not a volume id: $VOL"; exit 2; }
    [ "$VOL" != "$OWN" ] || { echo "refusing to release this node's own WAL volume"; exit 2; }
    if mountpoint -q "/var/lib/fjord/adopted/$VOL"; then umount "/var/lib/fjord/adopted/$VOL"; fi
    rmdir "/var/lib/fjord/adopted/$VOL" 2>/dev/null || true
    aws ec2 detach-volume --region "$REGION" --volume-id "$VOL" >/dev/null
    aws ec2 wait volume-available --region "$REGION" --volume-ids "$VOL"
    aws ec2 delete-volume --region "$REGION" --volume-id "$VOL"
    echo "released and deleted WAL volume $VOL"
    ;;
  release-requested)
    for request in /var/lib/fjord/adopted/vol-*.release; do
      [ -e "$request" ] || continue
      VOL=$(basename "$request" .release)
      if "$0" release "$VOL"; then rm -f "$request"; fi
    done
    ;;
  *) echo "usage: fjord-volume mount <kernel name> | release <volume id> | release-requested"; exit 2 ;;
esac
HELPER
chmod 0755 /usr/local/bin/fjord-volume
install -d -o fjord -g fjord -m 0750 /var/lib/fjord/adopted
cat > /etc/systemd/system/fjord-release.path <<'UNIT'
[Unit]
Description=Release handed-over WAL volumes that fjord has finished with

[Path]
PathExistsGlob=/var/lib/fjord/adopted/vol-*.release

[Install]
WantedBy=multi-user.target
UNIT
cat > /etc/systemd/system/fjord-release.service <<'UNIT'
[Unit]
Description=Unmount, detach and delete released WAL volumes

[Service]
Type=oneshot
ExecStart=/usr/local/bin/fjord-volume release-requested
UNIT
cat > /etc/systemd/system/fjord-adopt@.service <<'UNIT'
[Unit]
Description=Mount a WAL volume handed over to this Fjord node (%i)

[Service]
Type=oneshot
ExecStart=/usr/local/bin/fjord-volume mount %i
UNIT
cat > /etc/udev/rules.d/90-fjord-adopt.rules <<'RULES'
ACTION=="add", SUBSYSTEM=="block", ENV{DEVTYPE}=="disk", KERNEL=="nvme*n1|xvd*", TAG+="systemd", ENV{SYSTEMD_WANTS}+="fjord-adopt@%k.service"
RULES
udevadm control --reload-rules
systemctl daemon-reload
systemctl enable --now fjord-release.path
