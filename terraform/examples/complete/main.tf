# A complete Fjord deployment: network, data, gateways, storage nodes, control plane and
# observability, composed from the modules in ../../modules.

module "data" {
  source = "../../modules/data"

  name                                   = var.name
  deletion_protection                    = var.deletion_protection
  force_destroy                          = var.force_destroy_buckets
  create_autoscaling_service_linked_role = var.create_autoscaling_service_linked_role
}

module "network" {
  source = "../../modules/network"

  name                  = var.name
  vpc_cidr              = var.vpc_cidr
  availability_zones    = var.availability_zones
  nat_gateway_mode      = var.nat_gateway_mode
  create_public_subnets = !var.internal
  kms_key_arn           = module.data.kms_key_arn
}

module "observability" {
  source = "../../modules/observability"

  name        = var.name
  kms_key_arn = module.data.kms_key_arn
  alarm_email = var.alarm_email
  table_name  = module.data.table_name

  gateway_autoscaling_group_name    = module.gateways.autoscaling_group_name
  gateway_max_size                  = module.gateways.max_size
  gateway_load_balancer_arn_suffix  = module.gateways.load_balancer_arn_suffix
  gateway_target_group_arn_suffixes = module.gateways.target_group_arn_suffixes
  storage_autoscaling_group_names   = module.storage_nodes.autoscaling_group_names
  storage_max_size_per_az           = module.storage_nodes.max_size_per_az
}

module "gateways" {
  source = "../../modules/gateways"

  name                    = var.name
  vpc_id                  = module.network.vpc_id
  vpc_cidr                = module.network.vpc_cidr
  private_subnet_ids      = module.network.private_subnet_ids
  public_subnet_ids       = module.network.public_subnet_ids
  availability_zones      = module.network.availability_zones
  s3_prefix_list_id       = module.network.s3_prefix_list_id
  dynamodb_prefix_list_id = module.network.dynamodb_prefix_list_id
  allow_internet_egress   = module.network.has_nat

  internal              = var.internal
  allowed_client_cidrs  = var.allowed_client_cidrs
  certificate_arn       = var.kafka_certificate_arn
  domain_name           = var.kafka_domain_name
  route53_zone_id       = var.route53_zone_id
  enable_scram_listener = var.enable_scram_listener
  deletion_protection   = var.deletion_protection
  access_logs_bucket    = module.data.log_bucket_name
  max_size              = var.gateway_max_size

  architecture   = var.architecture
  ami_id         = var.ami_id
  fjord_artifact = var.fjord_artifact

  metadata_url               = module.data.metadata_url
  object_store_url           = module.data.object_store_url
  table_arn                  = module.data.table_arn
  bucket_arn                 = module.data.bucket_arn
  object_prefix              = module.data.object_prefix
  kms_key_arn                = module.data.kms_key_arn
  secret_sealing_kms_key_arn = module.data.secret_sealing_kms_key_arn

  log_group_name         = module.observability.log_group_names["gateway"]
  log_group_arn          = module.observability.log_group_arns["gateway"]
  metrics_log_group_name = module.observability.metrics_log_group_name
  metrics_log_group_arn  = module.observability.metrics_log_group_arn
  metrics_namespace      = module.observability.metrics_namespace
}

module "storage_nodes" {
  source = "../../modules/storage-nodes"

  name                          = var.name
  vpc_id                        = module.network.vpc_id
  vpc_cidr                      = module.network.vpc_cidr
  subnet_ids_by_az              = module.network.private_subnet_ids_by_az
  s3_prefix_list_id             = module.network.s3_prefix_list_id
  dynamodb_prefix_list_id       = module.network.dynamodb_prefix_list_id
  allow_internet_egress         = module.network.has_nat
  gateway_security_group_id     = module.gateways.security_group_id
  rpc_client_security_group_ids = module.control_plane[*].security_group_id

  max_size_per_az    = var.storage_max_size_per_az
  wal_volume_size_gb = var.wal_volume_size_gb

  architecture     = var.architecture
  ami_id           = var.ami_id
  fjord_artifact   = var.fjord_artifact
  metadata_url     = module.data.metadata_url
  object_store_url = module.data.object_store_url
  table_arn        = module.data.table_arn
  bucket_arn       = module.data.bucket_arn
  object_prefix    = module.data.object_prefix
  kms_key_arn      = module.data.kms_key_arn

  secret_sealing_kms_key_arn = module.data.secret_sealing_kms_key_arn

  log_group_name         = module.observability.log_group_names["storage-node"]
  log_group_arn          = module.observability.log_group_arns["storage-node"]
  metrics_log_group_name = module.observability.metrics_log_group_name
  metrics_log_group_arn  = module.observability.metrics_log_group_arn
  metrics_namespace      = module.observability.metrics_namespace
}

module "control_plane" {
  source = "../../modules/control-plane"
  count  = var.enable_control_plane ? 1 : 0

  name                    = var.name
  vpc_id                  = module.network.vpc_id
  vpc_cidr                = module.network.vpc_cidr
  private_subnet_ids      = module.network.private_subnet_ids
  public_subnet_ids       = module.network.public_subnet_ids
  s3_prefix_list_id       = module.network.s3_prefix_list_id
  dynamodb_prefix_list_id = module.network.dynamodb_prefix_list_id
  allow_internet_egress   = module.network.has_nat

  internal             = var.internal
  allowed_client_cidrs = var.allowed_client_cidrs
  certificate_arn      = var.control_plane_certificate_arn
  domain_name          = var.control_plane_domain_name
  route53_zone_id      = var.route53_zone_id
  deletion_protection  = var.deletion_protection
  access_logs_bucket   = module.data.log_bucket_name

  kafka_bootstrap_brokers = module.gateways.bootstrap_brokers_sasl_iam
  kafka_domain_name       = var.kafka_domain_name

  architecture   = var.architecture
  ami_id         = var.ami_id
  fjord_artifact = var.fjord_artifact

  metadata_url               = module.data.metadata_url
  object_store_url           = module.data.object_store_url
  table_arn                  = module.data.table_arn
  bucket_arn                 = module.data.bucket_arn
  object_prefix              = module.data.object_prefix
  kms_key_arn                = module.data.kms_key_arn
  secret_sealing_kms_key_arn = module.data.secret_sealing_kms_key_arn

  log_group_name         = module.observability.log_group_names["control-plane"]
  log_group_arn          = module.observability.log_group_arns["control-plane"]
  metrics_log_group_name = module.observability.metrics_log_group_name
  metrics_log_group_arn  = module.observability.metrics_log_group_arn
  metrics_namespace      = module.observability.metrics_namespace
}
