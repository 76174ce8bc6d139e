# Deploy: package the Chalice app, then our own Terraform (terraform/) applies it.
#   make package STAGE=dev    build/<stage>/deployment.zip + manifest.json
#   make plan|deploy|destroy  against AWS with the ambient credentials; state is
#                             local (terraform/terraform.tfstate.d/<stage>/), one
#                             workspace per stage (S3 backend: terraform/README.md)
#   make deploy-local         the same root module against AWS_ENDPOINT_URL, or an
#                             embedded moto server on 127.0.0.1:4566 for the run
#                             (HOLD=1 keeps it running until Ctrl-C)
# AUTO_APPROVE=1 skips terraform's confirmation of deploy/destroy.

.PHONY: package plan deploy destroy deploy-local tf-check tf-init

STAGE     ?= dev
TERRAFORM ?= terraform
TF_ROOT   := terraform
TF        := $(TERRAFORM) -chdir=$(TF_ROOT)
BUILD_DIR := $(abspath build/$(STAGE))
MANIFEST  := $(BUILD_DIR)/manifest.json
TF_VARFILE := $(wildcard $(TF_ROOT)/environments/$(STAGE).tfvars)
# Command-line variables: the stage's tfvars file comes last, so it wins.
TF_VARS    = -var 'stage=$(STAGE)' -var 'aws_region=$(AWS_DEFAULT_REGION)' \
             -var 'manifest_path=$(MANIFEST)' \
             $(if $(TF_VARFILE),-var-file=$(abspath $(TF_VARFILE)))
TF_APPROVE = $(if $(filter 1 yes true,$(AUTO_APPROVE)),-auto-approve)

# deploy-local keeps its own provider dir and state, never the AWS ones.
LOCAL_DIR   := $(abspath build/local/$(STAGE))
LOCAL_STATE := $(LOCAL_DIR)/terraform.tfstate
TF_LOCAL    := TF_DATA_DIR=$(LOCAL_DIR)/.terraform $(TF)
# Offline machines install hashicorp/aws from a filesystem mirror: TF_PLUGIN_DIR
# (default: /opt/tf-plugins when it exists, as on our CI machines).
TF_PLUGIN_DIR ?= $(firstword $(wildcard /opt/tf-plugins))
TF_INIT_ARGS = -input=false $(if $(TF_PLUGIN_DIR),-plugin-dir=$(TF_PLUGIN_DIR))

tf-check:
	@command -v $(TERRAFORM) >/dev/null 2>&1 || { \
	  echo "terraform not found: install Terraform >= 1.6 (https://developer.hashicorp.com/terraform/install)" >&2; exit 127; }

package: $(STAMP) ## Build build/STAGE/deployment.zip and manifest.json (chalice package)
	@$(PY) tools/package.py --stage $(STAGE) --out-dir $(BUILD_DIR)

tf-init: tf-check
	@$(TF) init $(TF_INIT_ARGS) >/dev/null
	@$(TF) workspace select -or-create $(STAGE) >/dev/null

plan: package tf-init ## terraform plan of STAGE (default dev) against AWS
	$(TF) plan -input=false $(TF_VARS) -out=$(BUILD_DIR)/plan.tfplan

deploy: package tf-init ## Package and terraform apply STAGE to AWS (prints the outputs)
	$(TF) apply -input=false $(TF_APPROVE) $(TF_VARS)

destroy: package tf-init ## terraform destroy STAGE in AWS (prod: turn deletion protection off first)
	$(TF) destroy -input=false $(TF_APPROVE) $(TF_VARS)

deploy-local: package tf-check ## Apply the stack to AWS_ENDPOINT_URL or an embedded moto (127.0.0.1:4566) and print the outputs
	@mkdir -p $(LOCAL_DIR)
	@$(PY) tools/moto_endpoint.py $(if $(filter 1 yes true,$(HOLD)),--hold) -- sh -ec '\
	  if [ -n "$$MOTO_ENDPOINT_EMBEDDED" ]; then rm -f $(LOCAL_STATE) $(LOCAL_STATE).backup; fi; \
	  $(TF_LOCAL) init $(TF_INIT_ARGS) >/dev/null; \
	  $(TF_LOCAL) apply -input=false -auto-approve -state=$(LOCAL_STATE) $(TF_VARS) -var aws_max_retries=1'
